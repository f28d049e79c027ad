"""The dashboard's pages: sign in with a token, then the estate as the token's scope sees it.

Everything is rendered here from the estate store's reads (the same the API serves) and Temporal's
schedules; the pages load only this package's stylesheet and carry their charts as inline SVG.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

import scheduling as schedules
from clients.api import estate_views as views
from clients.api.estate_access import presented_token, scope_of, session, store
from clients.api.gateway import TemporalUnavailable
from clients.api.routes.estate import CUSTOMER, CVE, INSTANCE_ID, InstanceQuery, ui_of
from clients.dashboard import charts, rings, signin
from contracts.errors import FleetpatchError
from contracts.providers import PatchGroup
from estate import reads
from estate.results import InstanceFilters, Scope

HERE = Path(__file__).resolve().parent
_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
_SECURITY = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make browsers send "Origin: null" on our own forms
    "Cache-Control": "no-store",
}
_MAX_FORM = 4096

router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)
log = logging.getLogger("fleetpatch.api")


class SignInNeeded(Exception):
    """No valid token in the cookie: the dashboard answers with the sign-in page."""


def install(app: FastAPI) -> None:
    """Mount the dashboard on the API."""
    app.include_router(router)

    @app.exception_handler(SignInNeeded)
    async def _signin(request: Request, exc: SignInNeeded) -> Response:
        return _to_signin()


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**context), status_code=status, headers=_SECURITY)


def _to_signin() -> RedirectResponse:
    return RedirectResponse("/dashboard/signin", status_code=303, headers=_SECURITY)


def viewer(request: Request, opened: Session = Depends(session)) -> Scope:
    """The signed-in reader's scope (cookie), else a redirect to the sign-in page."""
    scope = scope_of(request, opened, presented_token(request, cookie=True))
    if scope is None:
        raise SignInNeeded()
    return scope


def page_context(request: Request, scope: Scope) -> dict[str, Any]:
    token = presented_token(request, cookie=True) or ""
    who = "admin" if scope.admin else f"customer {scope.customer}"
    return {"scope": scope, "who": who, "csrf": signin.csrf_for(token)}


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _MAX_FORM:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {k: v[0] for k, v in parsed.items()}


@router.get("/dashboard.css")
def stylesheet() -> Response:
    css = (HERE / "templates" / "dashboard.css").read_text()
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=300"})


#: The tab's icon: without one, every browser asks for /favicon.ico and logs its 404.
_ICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
         '<rect width="16" height="16" rx="3" fill="#1f4e79"/><path d="M4 8.5l2.5 2.5L12 5.5" '
         'stroke="#fff" stroke-width="2" fill="none"/></svg>')


@router.get("/icon.svg")
def icon() -> Response:
    return Response(_ICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


@router.get("/signin")
def signin_page(request: Request, failed: bool = False) -> HTMLResponse:
    value = signin.new_signin_value()
    response = render("signin.html", status=401 if failed else 200, csrf=value, failed=failed)
    signin.set_signin_cookie(request, response, value)
    return response


@router.post("/signin")
async def signin_submit(request: Request) -> Response:
    form = await _form(request)
    if not signin.signin_csrf_ok(request, form.get("csrf")):
        return render("message.html", status=400, title="Sign-in expired", message="Reload the sign-in page and try again.")
    token = (form.get("token") or "").strip()

    def check() -> Scope | None:
        with store(request)() as opened:
            return scope_of(request, opened, token)

    scope = await run_in_threadpool(check)
    if scope is None:
        return signin_page(request, failed=True)
    response = RedirectResponse("/dashboard", status_code=303, headers=_SECURITY)
    signin.set_session(request, response, token, admin=scope.admin)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    form = await _form(request)
    if not signin.csrf_ok(request, presented_token(request, cookie=True), form.get("csrf")):
        return render("message.html", status=400, title="Not signed out", message="The form expired; reload the page.")
    response = _to_signin()
    signin.clear_session(response)
    return response


def _overview_data(opened: Session, scope: Scope) -> dict[str, Any]:
    totals = reads.compliance(opened, scope, [])
    matrix = reads.compliance(opened, scope, ["customer", "provider"])
    failing = reads.list_instances(opened, scope, InstanceFilters(failing_first=True), limit=15)
    trend = reads.trend(opened, scope, days=30)
    doc = views.compliance_doc(matrix)
    grid = {
        "customers": sorted({g["customer"] or "-" for g in doc["groups"]}),
        "providers": sorted({g["provider"] or "-" for g in doc["groups"]}),
        "cells": {f'{g["customer"] or "-"}|{g["provider"] or "-"}': g for g in doc["groups"]},
        "held": {h["customer"]: h for h in doc["held"]},
    }
    return {"report": views.compliance_doc(totals), "grid": grid,
            "failing": [views.instance_doc(r) for r in failing.instances], "chart": charts.trend_chart(trend)}


@router.get("")
async def overview(request: Request, scope: Scope = Depends(viewer), opened: Session = Depends(session)) -> HTMLResponse:
    data = await run_in_threadpool(_overview_data, opened, scope)
    ring_rows, rings_error = [], None
    try:
        client = await request.app.state.gateway.client()
        ring_rows = await rings.rings(client, scope)
    except TemporalUnavailable:  # the estate still shows without Temporal
        rings_error = "patch windows are unavailable: Temporal does not answer"
    except Exception:
        log.exception("dashboard: patch windows unreadable")
        rings_error = "patch windows could not be read"
    return render("overview.html", **page_context(request, scope), **data, rings=ring_rows, rings_error=rings_error)


def _query_string(query: InstanceQuery, **extra: Any) -> str:
    f = query.filters
    pairs = {"customer": f.customer, "provider": f.provider, "patch_group": f.patch_group, "compliance": f.compliance,
             "cve": f.cve, "os": f.os, **extra}
    return urlencode({k: v for k, v in pairs.items() if v})


@router.get("/instances")
def instances(request: Request, query: InstanceQuery = Depends(), scope: Scope = Depends(viewer),
              opened: Session = Depends(session)) -> HTMLResponse:
    query.filters.failing_first = True
    try:
        page = reads.list_instances(opened, scope, query.filters, query.limit, query.cursor)
    except reads.InvalidQuery as err:
        return render("message.html", status=400, title="Bad filter", message=str(err))
    rows = [views.instance_doc(r) for r in page.instances]
    next_link = f"/dashboard/instances?{_query_string(query, cursor=page.next_cursor)}" if page.next_cursor else None
    return render("instances.html", **page_context(request, scope), rows=rows, filters=query.filters,
                  csv_link=f"/dashboard/instances.csv?{_query_string(query)}", next_link=next_link,
                  groups=[g.value for g in PatchGroup])


@router.get("/instances.csv")
def instances_csv(query: InstanceQuery = Depends(), scope: Scope = Depends(viewer),
                  opened: Session = Depends(session)) -> Response:
    rows, cursor = [], query.cursor
    while True:  # every page, in the caller's scope
        page = reads.list_instances(opened, scope, query.filters, 1000, cursor)
        rows.extend(page.instances)
        cursor = page.next_cursor
        if cursor is None:
            break
    return Response(views.instances_csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="instances.csv"', "Cache-Control": "no-store"})


@router.get("/instances/{managed_instance_id}")
def instance(request: Request, managed_instance_id: Annotated[str, PathParam(pattern=INSTANCE_ID)],
             scope: Scope = Depends(viewer), opened: Session = Depends(session)) -> HTMLResponse:
    detail = reads.instance_detail(opened, scope, managed_instance_id)
    if detail is None:
        return render("message.html", status=404, title="Not found", message=f"No instance {managed_instance_id}.")
    return render("instance.html", **page_context(request, scope), d=views.detail_doc(detail, *ui_of(request)))


@router.get("/cves")
def cves(request: Request, cve: str = "", scope: Scope = Depends(viewer), opened: Session = Depends(session)) -> HTMLResponse:
    cve = cve.strip().upper()
    if cve and not re.match(CVE, cve):
        return render("cves.html", status=400, **page_context(request, scope), cve=cve, exposure=None,
                      error="A CVE id looks like CVE-2024-12345.")
    exposure = views.cve_doc(reads.cve_exposure(opened, scope, cve)) if cve else None
    return render("cves.html", **page_context(request, scope), cve=cve, exposure=exposure, error=None)


@router.post("/windows/{account}/{group}/release")
async def release(request: Request, account: Annotated[str, PathParam(pattern=r"^[A-Za-z0-9._-]{1,64}$")],
                  group: PatchGroup, scope: Scope = Depends(viewer)) -> Response:
    return await _release(request, scope, lambda client, reason: schedules.release(
        client, account, group, by="dashboard", reason=reason))


@router.post("/customers/{customer}/windows/{group}/release")
async def release_customer(request: Request, customer: Annotated[str, PathParam(pattern=CUSTOMER)],
                           group: PatchGroup, scope: Scope = Depends(viewer)) -> Response:
    """A customer-scoped ring: released in every systems account of the customer (as
    ``POST /v1/admin/windows/customers/{customer}/{group}/release``)."""
    return await _release(request, scope, lambda client, reason: schedules.release_customer(
        client, customer, group, by="dashboard", reason=reason))


async def _release(request: Request, scope: Scope, release_with: Callable[[Any, str], Awaitable[Any]]) -> Response:
    """The release form: CSRF, admins only, then the release; its refusals as pages."""
    form = await _form(request)
    if not signin.csrf_ok(request, presented_token(request, cookie=True), form.get("csrf")):
        return render("message.html", status=400, title="Not released", message="The form expired; reload the page.")
    if not scope.admin:
        return render("message.html", status=403, title="Forbidden", message="Only an admin releases a ring.")
    try:
        await release_with(await request.app.state.gateway.client(), form.get("reason", "")[:500])
    except schedules.WindowNotFound as err:
        return render("message.html", status=404, title="Not released", message=err.reason)
    except (FleetpatchError, schedules.WindowConflict) as err:
        return render("message.html", status=409, title="Not released", message=str(err))
    return RedirectResponse("/dashboard", status_code=303, headers=_SECURITY)

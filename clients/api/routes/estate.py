"""The estate read API (bearer token: admin reads everything, a customer token its customer only).

GET /v1/compliance?group_by=customer&group_by=provider    counters per group, and totals
GET /v1/compliance/trend?days=30[&customer=]               compliance aggregates over time
GET /v1/instances?customer=&provider=&...&limit=&cursor=   instance rows (CSV with Accept: text/csv)
GET /v1/instances/{managed_instance_id}                    the audit chain from identity to result
GET /v1/cves/{cve_id}                                      instances still exposed to one CVE

Every query runs in the caller's ``Scope``: a customer's filter can narrow what it sees, never widen it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from clients.api.estate_access import reader, session
from clients.api import estate_views as views
from clients.api.errors import bad_request, error_response, error_responses
from clients.api.openapi import links_to
from contracts.estate import Compliance
from contracts.providers import PatchGroup
from estate import reads, reconcile_events
from estate.results import GROUP_KEYS, InstanceFilters, Scope

router = APIRouter(prefix="/v1", tags=["estate"])

GroupKey = StrEnum("GroupKey", {key.upper(): key for key in GROUP_KEYS})  # type: ignore[misc]
CUSTOMER = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"
CVE = r"^CVE-\d{4}-\d{4,7}$"
INSTANCE_ID = r"^(mi-[0-9a-f]{17}|i-[0-9a-f]{8,17})$"
PROVIDERS = r"^(gcp|azure|aws|ec2|vmware)$"
ACCOUNT = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_READ = error_responses(401)


def bad_query(error: reads.InvalidQuery) -> JSONResponse:
    """A read argument the store refused (e.g. a cursor not its own): 400 naming the field."""
    return bad_request(str(error), [{"loc": ["query", error.field], "field": error.field, "msg": str(error)}])


@router.get(
    "/compliance", summary="Compliance counters per group, and totals", responses=_READ,
    description="`held` lists, per customer (a customer token: its own), the OSes its later rings only scan "
    "because no early instance of that OS exists anywhere in its estate (Ubuntu and Debian, whose baselines "
    "cannot delay approval), with the note \"held: no early instance of this OS\": add an early instance of it.",
)
def compliance(
    group_by: Annotated[list[GroupKey], Query(description="repeat: customer, provider, patch_group, systems_account, os")] = [],  # noqa: B006
    scope: Scope = Depends(reader),
    opened: Session = Depends(session),
) -> JSONResponse:
    keys = list(dict.fromkeys(k.value for k in group_by))
    try:
        report = reads.compliance(opened, scope, keys)
    except reads.InvalidQuery as err:
        return bad_query(err)
    return JSONResponse(views.compliance_doc(report))


@router.get("/compliance/trend", summary="Compliance aggregates over the last days", responses=_READ)
def trend(
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    customer: Annotated[str | None, Query(pattern=CUSTOMER)] = None,
    scope: Scope = Depends(reader),
    opened: Session = Depends(session),
) -> JSONResponse:
    try:
        points = reads.trend(opened, scope, days=days, customer=customer)
    except reads.InvalidQuery as err:
        return bad_query(err)
    return JSONResponse(views.trend_doc(points, days, customer))


class InstanceQuery:
    """The filters of GET /v1/instances, each validated (a bad one is a 400 naming it)."""

    def __init__(
        self,
        customer: Annotated[str | None, Query(pattern=CUSTOMER)] = None,
        provider: Annotated[str | None, Query(pattern=PROVIDERS)] = None,
        patch_group: PatchGroup | None = None,
        systems_account: Annotated[str | None, Query(pattern=ACCOUNT)] = None,
        compliance: Compliance | None = None,
        cve: Annotated[str | None, Query(pattern=CVE)] = None,
        os: Annotated[str | None, Query(max_length=64)] = None,
        include_departed: bool = False,
        failing_first: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(pattern=reads.CURSOR, description=(
            "the `next_cursor` of the previous page (with the same filters): the position after its last "
            "row, which carries the listing's order (`{rank}.{id}` continues the failing-first order)"))] = None,
    ) -> None:
        self.filters = InstanceFilters(
            customer=customer, provider=provider, patch_group=patch_group.value if patch_group else None,
            systems_account=systems_account, compliance=compliance.value if compliance else None, cve=cve, os=os,
            include_departed=include_departed, failing_first=failing_first,
        )
        self.limit = limit
        self.cursor = cursor


def wants_csv(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept.split(",")[0]


@router.get(
    "/instances",
    summary="Instance rows, filtered, in pages (CSV with Accept: text/csv)",
    operation_id="list_instances",
    responses={**_READ, 200: {"content": {"application/json": {}, "text/csv": {}}}},
    openapi_extra=links_to(200, instance={
        "operationId": "get_instance",
        "parameters": {"managed_instance_id": "$response.body#/instances/0/managed_instance_id"},
    }),
)
def list_instances(
    request: Request,
    query: InstanceQuery = Depends(),
    scope: Scope = Depends(reader),
    opened: Session = Depends(session),
) -> Response:
    try:
        page = reads.list_instances(opened, scope, query.filters, query.limit, query.cursor)
    except reads.InvalidQuery as err:
        return bad_query(err)
    headers = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else {}
    if wants_csv(request):
        return Response(views.instances_csv(page.instances), media_type="text/csv; charset=utf-8", headers={
            **headers, "Content-Disposition": 'attachment; filename="instances.csv"'})
    body = {"instances": [views.instance_doc(r) for r in page.instances], "next_cursor": page.next_cursor}
    return JSONResponse(body)


@router.get(
    "/instances/{managed_instance_id}",
    summary="One instance's audit chain: identity evidence, enrollment, baseline, patches, inventory, windows, "
    "and what reconcile did to it (`reconcile`, newest first)",
    operation_id="get_instance",
    responses=error_responses(401, 404),
)
def instance(
    request: Request,
    managed_instance_id: Annotated[str, Path(pattern=INSTANCE_ID)],
    scope: Scope = Depends(reader),
    opened: Session = Depends(session),
) -> JSONResponse:
    detail = reads.instance_detail(opened, scope, managed_instance_id)
    if detail is None:
        return error_response("NotFound", f"no instance {managed_instance_id} in this token's scope", 404)
    doc = views.detail_doc(detail, *ui_of(request))
    doc["reconcile"] = reconcile_events.for_instance(opened, scope, detail.instance)  # what reconcile did, newest first
    return JSONResponse(doc)


def ui_of(request: Request) -> tuple[str | None, str]:
    api = request.app.state.settings.api
    return api.temporal_ui_url, api.temporal_namespace


@router.get("/cves/{cve_id}", summary="Instances still exposed to a CVE, by customer and provider", responses=_READ)
def cve(
    cve_id: Annotated[str, Path(pattern=CVE)],
    scope: Scope = Depends(reader),
    opened: Session = Depends(session),
) -> JSONResponse:
    return JSONResponse(views.cve_doc(reads.cve_exposure(opened, scope, cve_id)))


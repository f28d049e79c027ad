"""The fleetpatch HTTP API (FastAPI): VM registration, admin endpoints, health, OpenAPI at /docs.

Conventions every route follows (error body, 400 for malformed input, declared responses,
budgets, OpenAPI links) are written down in ``clients.api.errors``; the document itself is
finished in ``clients.api.openapi``.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from clients import startup
from clients.api import observability, openapi
from clients.api.budget import EarlyAnswer
from clients.api.errors import ServiceMisconfigured, bad_request_handler, error_response
from clients.api.gateway import TemporalGateway, TemporalUnavailable
from clients.api.proof import IdentityProof
from clients.api.rate_limit import AddressLimited, RateLimits
from clients.api.vcenter_keys import VcenterKeyCache
from clients.api.registration_input import registration_schemas
from clients.api.routes import (
    admin,
    codec,
    compliance_sync,
    estate,
    health,
    links,
    offboard,
    reconcile,
    registration,
    tokens,
    windows,
)
from clients.dashboard import pages as dashboard
from config import telemetry
from config.settings import Settings

log = logging.getLogger("fleetpatch.api")


def create_app(settings: Settings, gateway: TemporalGateway | None = None, proof: IdentityProof | None = None) -> FastAPI:
    app = FastAPI(
        title="fleetpatch",
        summary="Enroll VMs from any cloud into AWS Systems Manager patching.",
        description=(
            "Malformed input is answered 400 with the field named; every error is an `ErrorBody`. "
            f"Admin mutations answer within {settings.api.admin_budget.total_seconds():g} s "
            "(`FLEETPATCH_API__ADMIN_BUDGET`) or `202` with a `Location` to poll; registrations wait "
            f"up to {settings.api.registration_wait.total_seconds():g} s (`FLEETPATCH_API__REGISTRATION_WAIT`)."
        ),
        version="0.1.0",
        **observability.NATIVE_TELEMETRY_OFF,
    )
    app.state.settings = settings
    app.state.gateway = gateway or TemporalGateway.from_environment(
        settings, **telemetry.connect_overrides(settings.telemetry, "fleetpatch-api")
    )
    app.state.vcenter_keys = VcenterKeyCache(app.state.gateway, settings)
    app.state.proof = proof or IdentityProof(settings, app.state.vcenter_keys)
    api = settings.api
    app.state.rate_limits = RateLimits(api.rate_per_address, api.rate_per_instance, api.rate_window.total_seconds())
    observability.install(app, settings, telemetry.tracer(settings.telemetry, "fleetpatch-api"))
    for module in (
        health, registration, links, admin, windows, reconcile, offboard, estate, tokens, compliance_sync
    ):
        app.include_router(module.router)
    dashboard.install(app)
    codec.install(app, settings)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    _handle_errors(app)
    _warn_about_agent_trust(settings)
    return app


def _warn_about_agent_trust(settings: Settings) -> None:
    """Say at start what would make VMs refuse every agent package (startup scripts, README)."""
    try:
        problem = startup.expiry_warning(startup.trust_from_settings(settings.aws), time.time())
    except ValueError as err:
        problem = f"no startup script can be served: agent signing trust: {err}"
    if problem:
        log.warning("%s", problem)


def _handle_errors(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, bad_request_handler)  # type: ignore[arg-type]

    @app.exception_handler(AddressLimited)
    async def _limited(request: Request, exc: AddressLimited) -> JSONResponse:
        return exc.response

    @app.exception_handler(EarlyAnswer)
    async def _early(request: Request, exc: EarlyAnswer) -> JSONResponse:
        return exc.response

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.detail, dict):
            return JSONResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
        if exc.status_code == 405:
            allow = ", ".join(_allowed_methods(app, request))
            return error_response("MethodNotAllowed", f"{request.method} is not allowed here; allowed: {allow}", 405, Allow=allow)
        kind = {400: "BadRequest", 404: "NotFound"}.get(exc.status_code, "HTTPError")
        return error_response(kind, str(exc.detail), exc.status_code, **(exc.headers or {}))

    @app.exception_handler(TemporalUnavailable)
    async def _temporal_down(request: Request, exc: TemporalUnavailable) -> JSONResponse:
        return JSONResponse(
            {"error": "TemporalUnavailable", "reason": "the workflow engine is unreachable; retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(RPCError)
    async def _temporal_rpc(request: Request, exc: RPCError) -> JSONResponse:
        # A Temporal call failed on the way (server gone, overloaded): the caller retries later.
        log.warning("temporal call failed", extra={"path": request.url.path, "status": exc.status.name})
        return error_response("TemporalUnavailable", "the workflow engine did not answer; retry later", 503,
                              **{"Retry-After": "5"})

    @app.exception_handler(ServiceMisconfigured)
    async def _misconfigured(request: Request, exc: ServiceMisconfigured) -> JSONResponse:
        return JSONResponse({"error": "ConfigurationInvalid", "reason": str(exc)}, status_code=503)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: log it with its trace, answer without leaking internals.
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse({"error": "InternalError", "reason": "unexpected server error"}, status_code=500)


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method the document lists at this path (Starlette's 405 names only one route's)."""
    methods: set[str] = set()
    for template, operations in app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), request.url.path):
            methods |= {m.upper() for m in operations}
    return sorted(methods)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        app.openapi_schema = openapi.build(app, registration_schemas())
    return app.openapi_schema

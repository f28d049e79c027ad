"""The fleetpatch HTTP API (FastAPI): VM registration, admin endpoints, health, OpenAPI at /docs.

Conventions every route follows (error body, 400 for malformed input, declared responses,
budgets, OpenAPI links) are written down in ``clients.api.errors``; the document itself is
finished in ``clients.api.openapi``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from clients.api import openapi
from clients.api.errors import ServiceMisconfigured, bad_request_handler
from clients.api.gateway import TemporalGateway, TemporalUnavailable
from clients.api.registration_input import registration_schemas
from clients.api.routes import admin, health, registration, windows
from config.settings import Settings

log = logging.getLogger("fleetpatch.api")


def create_app(settings: Settings, gateway: TemporalGateway | None = None) -> FastAPI:
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
    )
    app.state.settings = settings
    app.state.gateway = gateway or TemporalGateway.from_environment(settings.local_json)
    for module in (health, registration, admin, windows):
        app.include_router(module.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    _handle_errors(app)
    return app


def _handle_errors(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, bad_request_handler)  # type: ignore[arg-type]

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) else {"error": "HTTPError", "reason": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(TemporalUnavailable)
    async def _temporal_down(request: Request, exc: TemporalUnavailable) -> JSONResponse:
        return JSONResponse(
            {"error": "TemporalUnavailable", "reason": "the workflow engine is unreachable; retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(ServiceMisconfigured)
    async def _misconfigured(request: Request, exc: ServiceMisconfigured) -> JSONResponse:
        return JSONResponse({"error": "ConfigurationInvalid", "reason": str(exc)}, status_code=503)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: log it with its trace, answer without leaking internals.
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse({"error": "InternalError", "reason": "unexpected server error"}, status_code=500)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        app.openapi_schema = openapi.build(app, registration_schemas())
    return app.openapi_schema

"""The fleetpatch HTTP API (FastAPI): VM registration, admin endpoints, health, OpenAPI at /docs."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from clients.api.errors import ServiceMisconfigured
from clients.api.gateway import TemporalGateway, TemporalUnavailable
from clients.api.registration_input import RegistrationRequest
from clients.api.routes import admin, codec, health, registration, windows
from config.settings import Settings

log = logging.getLogger("fleetpatch.api")


def create_app(settings: Settings, gateway: TemporalGateway | None = None) -> FastAPI:
    app = FastAPI(
        title="fleetpatch",
        summary="Enroll VMs from any cloud into AWS Systems Manager patching.",
        version="0.1.0",
    )
    app.state.settings = settings
    app.state.gateway = gateway or TemporalGateway.from_environment(settings)
    app.include_router(health.router)
    app.include_router(registration.router)
    app.include_router(admin.router)
    app.include_router(windows.router)
    codec.install(app, settings)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

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

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()
        ]
        return JSONResponse({"error": "BadRequest", "reason": "malformed request", "details": errors}, status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: log it with its trace, answer without leaking internals.
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse({"error": "InternalError", "reason": "unexpected server error"}, status_code=500)

    return app


def _openapi(app: FastAPI) -> dict:
    """The generated schema, plus the registration body (parsed by hand for strict size/JSON checks)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        model = RegistrationRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model.pop("$defs", {}))
        components["RegistrationRequest"] = model
        app.openapi_schema = schema
    return app.openapi_schema

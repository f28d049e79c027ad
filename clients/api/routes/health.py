"""Liveness of the API and its dependency on Temporal."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="ok only when Temporal answers")
async def healthz(request: Request) -> JSONResponse:
    ok, detail = await request.app.state.gateway.healthy()
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "temporal": detail},
        status_code=200 if ok else 503,
    )

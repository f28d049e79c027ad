"""Liveness of the API and its dependency on Temporal."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    temporal: str


@router.get(
    "/healthz", operation_id="healthz", summary="ok only when Temporal answers",
    responses={200: {"model": Health, "description": "Temporal answers"},
               503: {"model": Health, "description": "Temporal does not answer"}},
)
async def healthz(request: Request) -> JSONResponse:
    ok, detail = await request.app.state.gateway.healthy()
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "temporal": detail},
        status_code=200 if ok else 503,
    )

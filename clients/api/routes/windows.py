"""Admin API for patch windows (bearer admin token): the same operations as ``fleetpatch windows``.

GET    /v1/admin/windows[?account=&customer=]            list
GET    /v1/admin/windows/{account}/{group}                show
POST   /v1/admin/windows/{account}/{group}/pause          {"note"}
POST   /v1/admin/windows/{account}/{group}/resume         {"note"}
POST   /v1/admin/windows/{account}/{group}/trigger        {"wait": bool}  202 {"workflow_id"} | 200 summary
POST   /v1/admin/windows/{account}/{group}/backfill       {"start", "end"}
POST   /v1/admin/windows/{account}/{group}/release        {"reason", "by", "earlier_run"}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from temporalio.client import Client

import scheduling as schedules
from clients.api.auth import require_admin
from clients.api.errors import error_response
from contracts.errors import ErrorType, FleetpatchError
from contracts.providers import PatchGroup

router = APIRouter(prefix="/v1/admin/windows", tags=["patch windows"], dependencies=[Depends(require_admin)])


class NoteBody(BaseModel):
    note: str | None = Field(default=None, max_length=500)


class TriggerBody(BaseModel):
    wait: bool = False


class BackfillBody(BaseModel):
    start: datetime
    end: datetime


class ReleaseBody(BaseModel):
    reason: str = Field(default="", max_length=500)
    by: str = Field(default="operator", max_length=100)
    earlier_run: str | None = Field(default=None, max_length=300)


async def _client(request: Request) -> Client:
    return await request.app.state.gateway.client()


async def _answer(operation: Any, status: int = 200) -> JSONResponse:
    """Run a schedule operation; project errors map to their HTTP status, never a 500."""
    try:
        result = await operation
    except FleetpatchError as err:
        return error_response(err.type.value, err.reason)
    except schedules.WindowConflict as err:
        return error_response("WindowConflict", str(err), 409)
    except ValueError as err:
        return error_response(ErrorType.CONFIGURATION_INVALID.value, str(err), 400)
    return JSONResponse(jsonable_encoder(result), status_code=status)


@router.get("", summary="Every patch window")
async def list_windows(request: Request, account: str | None = None, customer: str | None = None) -> JSONResponse:
    return await _answer(schedules.list_windows(await _client(request), account_id=account, customer=customer))


@router.get("/{account}/{group}", summary="One patch window with its recent runs")
async def show(request: Request, account: str, group: PatchGroup) -> JSONResponse:
    return await _answer(schedules.show(await _client(request), account, group))


@router.post("/{account}/{group}/pause", summary="Pause a window")
async def pause(request: Request, account: str, group: PatchGroup, body: NoteBody | None = None) -> JSONResponse:
    return await _answer(_ok(schedules.pause(await _client(request), account, group, body.note if body else None)))


@router.post("/{account}/{group}/resume", summary="Resume a paused window")
async def resume(request: Request, account: str, group: PatchGroup, body: NoteBody | None = None) -> JSONResponse:
    return await _answer(_ok(schedules.resume(await _client(request), account, group, body.note if body else None)))


@router.post("/{account}/{group}/trigger", summary="Open a window now (optionally wait for its summary)")
async def trigger(request: Request, account: str, group: PatchGroup, body: TriggerBody | None = None) -> JSONResponse:
    client = await _client(request)

    async def go() -> dict[str, Any]:
        workflow_id = await schedules.trigger(client, account, group)
        if body is None or not body.wait:
            return {"workflow_id": workflow_id}
        return {"workflow_id": workflow_id, "summary": await schedules.wait(client, workflow_id)}

    return await _answer(go(), status=200 if body is not None and body.wait else 202)


@router.post("/{account}/{group}/backfill", summary="Run, now, the windows of a past period")
async def backfill(request: Request, account: str, group: PatchGroup, body: BackfillBody) -> JSONResponse:
    return await _answer(_ok(schedules.backfill(await _client(request), account, group, body.start, body.end)), 202)


@router.post("/{account}/{group}/release", summary="Release a ring held by its promotion gate")
async def release(request: Request, account: str, group: PatchGroup, body: ReleaseBody | None = None) -> JSONResponse:
    body = body or ReleaseBody()
    return await _answer(schedules.release(await _client(request), account, group, by=body.by, reason=body.reason,
                                           earlier_run=body.earlier_run))


async def _ok(operation: Any) -> dict[str, str]:
    await operation
    return {"status": "ok"}

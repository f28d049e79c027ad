"""Admin API for patch windows (bearer admin token): the same operations as ``fleetpatch windows``.

GET    /v1/admin/windows[?account=&customer=]            list
GET    /v1/admin/windows/{account}/{group}                show
POST   /v1/admin/windows/{account}/{group}/pause          {"note"}
POST   /v1/admin/windows/{account}/{group}/resume         {"note"}
POST   /v1/admin/windows/{account}/{group}/trigger        {"wait": bool}  202 {"workflow_id"} | 200 summary
POST   /v1/admin/windows/{account}/{group}/backfill       {"start", "minutes"}
POST   /v1/admin/windows/{account}/{group}/release        {"reason", "by", "earlier_run"}
POST   /v1/admin/windows/customers/{customer}/{group}/release   {"reason", "by"}  every account of a customer
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client

import scheduling as schedules
from clients.api.auth import require_admin
from clients.api.budget import Deadline, pending
from clients.api.errors import error_response, error_responses
from clients.api.json_types import JsonBool, JsonDateTime, JsonInt
from clients.api.link_input import CUSTOMER
from clients.api.openapi import budget_note, links_to, polled
from contracts.errors import FleetpatchError
from contracts.providers import PatchGroup

router = APIRouter(prefix="/v1/admin/windows", tags=["patch windows"], dependencies=[Depends(require_admin)])
SYSTEMS_ACCOUNT = r"^[0-9]{12}$"
Account = Annotated[str, Path(pattern=SYSTEMS_ACCOUNT, description="the systems account id (12 digits)",
                              examples=["123456789012"])]
Group = Annotated[PatchGroup, Path(description="the ring: early, on-time or late", examples=["early"])]
_ERRORS = error_responses(401, 403, 404, 409, 502, 503)
_WINDOW = {"account": "$response.body#/account_id", "group": "$response.body#/group"}
_FIRST = {"account": "$response.body#/0/account_id", "group": "$response.body#/0/group"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoteBody(_Strict):
    note: str | None = Field(default=None, max_length=500)


class TriggerBody(_Strict):
    wait: JsonBool = False


class BackfillBody(_Strict):
    """The period ``[start, start + minutes)``: the runs the schedule would have started in it."""

    start: JsonDateTime
    minutes: JsonInt = Field(ge=1, le=366 * 24 * 60, description="length of the period, at most a year")


class ReleaseBody(_Strict):
    reason: str = Field(default="", max_length=500)
    by: str = Field(default="operator", max_length=100)
    earlier_run: str | None = Field(default=None, max_length=300)


class CustomerReleaseBody(_Strict):
    reason: str = Field(default="", max_length=500, description="why the ring may proceed (recorded)")
    by: str = Field(default="operator", max_length=100, description="who releases it")


Customer = Annotated[str, Path(pattern=CUSTOMER, description="the customer, as its links name it", examples=["acme"])]


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
    if isinstance(result, JSONResponse):
        return result
    return JSONResponse(jsonable_encoder(result), status_code=status)


@router.get("", operation_id="listWindows", summary="Every patch window", responses=_ERRORS,
            openapi_extra=links_to(200, showWindow={"operationId": "showWindow", "parameters": _FIRST}))
async def list_windows(
    request: Request,
    account: Annotated[str | None, Query(pattern=SYSTEMS_ACCOUNT)] = None,
    customer: Annotated[str | None, Query(pattern=CUSTOMER)] = None,
) -> JSONResponse:
    return await _answer(schedules.list_windows(await _client(request), account_id=account, customer=customer))


@router.get("/{account}/{group}", operation_id="showWindow", summary="One patch window with its recent runs",
            responses=_ERRORS)
async def show(request: Request, account: Account, group: Group) -> JSONResponse:
    return await _answer(schedules.show(await _client(request), account, group))


@router.post("/{account}/{group}/pause", operation_id="pauseWindow", summary="Pause a window", responses=_ERRORS,
             openapi_extra=links_to(200, showWindow={"operationId": "showWindow", "parameters": {
                 "account": "$request.path.account", "group": "$request.path.group"}}))
async def pause(request: Request, account: Account, group: Group, body: NoteBody | None = None) -> JSONResponse:
    return await _answer(_ok(schedules.pause(await _client(request), account, group, body.note if body else None)))


@router.post("/{account}/{group}/resume", operation_id="resumeWindow", summary="Resume a paused window",
             responses=_ERRORS)
async def resume(request: Request, account: Account, group: Group, body: NoteBody | None = None) -> JSONResponse:
    return await _answer(_ok(schedules.resume(await _client(request), account, group, body.note if body else None)))


@router.post(
    "/{account}/{group}/trigger", operation_id="triggerWindow",
    summary="Open a window now (optionally wait for its summary)",
    description=budget_note("FLEETPATCH_API__ADMIN_BUDGET", "10 s") + " With `wait`, the budget bounds the wait.",
    responses={202: {"description": "started; poll Location for its summary"}, **_ERRORS},
    openapi_extra=polled(),
)
async def trigger(request: Request, account: Account, group: Group, body: TriggerBody | None = None) -> JSONResponse:
    deadline = Deadline.of(request)
    client = await _client(request)

    async def go() -> Any:
        try:
            workflow_id = await schedules.trigger(client, account, group, settle_seconds=deadline.left(0.5))
        except TimeoutError as err:
            return error_response("WindowNotStarted", str(err), 409)
        if body is None or not body.wait:
            return pending(workflow_id)
        try:
            summary = await asyncio.wait_for(schedules.wait(client, workflow_id), deadline.left())
        except TimeoutError:
            return pending(workflow_id)
        return {"workflow_id": workflow_id, "summary": summary}

    return await _answer(go())


@router.post("/{account}/{group}/backfill", status_code=202, operation_id="backfillWindow",
             summary="Run, now, the windows of a past period", responses=_ERRORS)
async def backfill(request: Request, account: Account, group: Group, body: BackfillBody) -> JSONResponse:
    end = body.start + timedelta(minutes=body.minutes)
    return await _answer(_ok(schedules.backfill(await _client(request), account, group, body.start, end)), 202)


@router.post("/{account}/{group}/release", operation_id="releaseWindow",
             summary="Release a ring held by its promotion gate", responses=_ERRORS)
async def release(request: Request, account: Account, group: Group, body: ReleaseBody | None = None) -> JSONResponse:
    body = body or ReleaseBody()
    return await _answer(schedules.release(await _client(request), account, group, by=body.by, reason=body.reason,
                                           earlier_run=body.earlier_run))


@router.post(
    "/customers/{customer}/{group}/release", operation_id="releaseCustomerWindows",
    summary="Release a ring held by its promotion gate in every systems account of a customer",
    description="Each held run of the ring proceeds; each window of the ring without one records a release of "
    "the earlier ring's last runs of the whole customer, which its next run honours (the same as "
    "`fleetpatch windows release --customer`). The answer says, per systems account, which was done. "
    "404 when the customer has no window of this ring.",
    responses=_ERRORS,
)
async def release_customer(request: Request, customer: Customer, group: Group,
                           body: CustomerReleaseBody | None = None) -> JSONResponse:
    body = body or CustomerReleaseBody()
    client = await _client(request)

    async def go() -> dict[str, Any]:
        done = await schedules.release_customer(client, customer, group, by=body.by, reason=body.reason)
        return {"customer": customer, "group": group.value,
                "accounts": [{"account_id": account, "kind": result.kind, "workflow_id": result.workflow_id}
                             for account, result in sorted(done.items())]}

    return await _answer(go())


async def _ok(operation: Any) -> dict[str, str]:
    await operation
    return {"status": "ok"}

"""Admin API for offboarding (bearer admin token): what ``fleetpatch links remove`` and
``fleetpatch instances remove`` call.

POST /v1/admin/offboard          {"provider", "account", "yes": false}
    Without ``yes``: a dry run, listing the schedules it would pause and the managed instances
    and activations it would remove. With ``yes``: pauses the account's reconcile and patch-window
    schedules, deregisters its managed instances (EC2: removes the fleetpatch tags), deletes its
    activations and unlinks it. It never closes an AWS account, and says so.
POST /v1/admin/instances/remove  {"provider", "instance_key", "dry_run": false}
    Decommissions one VM: its managed instance is deregistered (EC2: its fleetpatch tags removed).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StringConstraints
from temporalio.client import Client, WorkflowFailureError

import scheduling as windows
from clients.api.auth import require_admin
from clients.api.budget import admin_failure
from clients.api.errors import error_response, error_responses
from clients.api.json_types import JsonBool
from clients.api.link_input import ANY_ACCOUNT, INSTANCE_KEY
from clients.api.routes.reconcile import linked, reconcile_input
from config.settings import Settings
from contracts import ids
from contracts.enrollment import LinkCommand, LinkCommandResult, LinkKey
from contracts.errors import FleetpatchError
from contracts.names import WorkflowName
from contracts.patching import RING_ORDER
from contracts.providers import Provider
from contracts.reconcile import ReconcileResult
from scheduling import reconcile as schedules
from scheduling import vcenter_tokens as token_schedules

router = APIRouter(prefix="/v1/admin", tags=["offboarding"], dependencies=[Depends(require_admin)])

Account = Annotated[str, StringConstraints(pattern=ANY_ACCOUNT)]
InstanceKey = Annotated[str, StringConstraints(pattern=INSTANCE_KEY)]
NEVER_CLOSED = "fleetpatch never closes an AWS account: the systems account {account} stays open (close it in AWS Organizations if it is no longer wanted)"


class OffboardBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Provider
    account: Account
    yes: JsonBool = False


class RemoveInstanceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Provider
    instance_key: InstanceKey
    dry_run: JsonBool = False


async def _run(client: Client, settings: Settings, provider: Provider, account: str, *, dry_run: bool,
               instance_key: str | None = None) -> ReconcileResult:
    inp = reconcile_input(settings, provider, account, dry_run)
    inp.offboard, inp.instance_key = True, instance_key
    return await (await schedules.start_run(client, inp)).result()


def _schedule_ids(result: ReconcileResult) -> list[str]:
    found = [ids.reconcile_schedule(result.provider, result.cloud_account)]
    if result.provider == Provider.VMWARE:
        found.append(ids.vcenter_tokens_schedule(result.cloud_account))
    if result.systems_account:
        found += [ids.patch_window_schedule(result.systems_account, g) for g in RING_ORDER]
    return found


async def _pause_all(client: Client, result: ReconcileResult) -> list[str]:
    """Pause the account's schedules; the ones that exist and are now paused."""
    note = "paused: the cloud account was offboarded"
    paused = []
    if await schedules.pause_schedule(client, result.provider, result.cloud_account, note):
        paused.append(ids.reconcile_schedule(result.provider, result.cloud_account))
    if result.provider == Provider.VMWARE and await token_schedules.pause_schedule(client, result.cloud_account, note):
        paused.append(ids.vcenter_tokens_schedule(result.cloud_account))
    for group in RING_ORDER if result.systems_account else ():
        try:
            await windows.pause(client, result.systems_account or "", group, note)
        except FleetpatchError:
            continue  # that window was never created
        paused.append(ids.patch_window_schedule(result.systems_account or "", group))
    return paused


def _failed(err: WorkflowFailureError) -> JSONResponse:
    return admin_failure(err, "OffboardFailed")


@router.post("/offboard", summary="Offboard a linked cloud account (a dry run unless yes)",
             responses=error_responses(403, 404, 409, 502))
async def offboard(body: OffboardBody, request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    client = await request.app.state.gateway.client()
    if not any(l.provider == body.provider and l.cloud_account == body.account for l in await linked(client, settings)):
        return error_response("TenantNotLinked", f"account: {body.provider.value}/{body.account} is not linked", 404)
    try:
        result = await _run(client, settings, body.provider, body.account, dry_run=not body.yes)
    except WorkflowFailureError as err:
        return _failed(err)
    answer: dict[str, Any] = {"dry_run": not body.yes, "result": asdict(result),
                              "note": NEVER_CLOSED.format(account=result.systems_account or body.account)}
    if not body.yes:
        answer["would_pause"] = _schedule_ids(result)
        return JSONResponse(answer)
    answer["paused"] = await _pause_all(client, result)
    await client.execute_workflow(
        WorkflowName.LINK_ADMIN,
        LinkCommand(action="delete", key=LinkKey(provider=body.provider, cloud_account=body.account),
                    queue_prefix=settings.task_queue_prefix),
        id=f"links/{body.provider.value}/{body.account}/offboard", task_queue=schedules.orchestrator_queue(settings.task_queue_prefix),
        result_type=LinkCommandResult,
    )
    answer["unlinked"] = f"{body.provider.value}/{body.account}"
    return JSONResponse(answer)


@router.post("/instances/remove", summary="Decommission one VM: its managed instance leaves SSM",
             responses=error_responses(403, 404, 409, 502))
async def remove_instance(body: RemoveInstanceBody, request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    client = await request.app.state.gateway.client()
    account = body.instance_key.split("/", 1)[0]
    try:
        result = await _run(client, settings, body.provider, account, dry_run=body.dry_run, instance_key=body.instance_key)
    except WorkflowFailureError as err:
        return _failed(err)
    if not result.actions:
        return error_response("NotFound", f"instance_key: {body.instance_key} is neither a managed instance nor tagged", 404)
    return JSONResponse({"dry_run": body.dry_run, "result": asdict(result)})

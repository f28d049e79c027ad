"""Admin API for reconcile (bearer admin token): the same runs as ``fleetpatch reconcile``.

POST /v1/admin/reconcile  {"provider"?, "account"?, "dry_run": false, "wait": false}
    202 {"runs": [{"provider", "cloud_account", "workflow_id"}]}  or, with wait, 200 {"results": [...]}

Without ``account`` every linked cloud account (of ``provider``, when given) is reconciled; an
``account`` without ``provider`` is that account under whichever provider links it.
Each link also gets an hourly schedule ``reconcile/{provider}/{account}`` when it is linked.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StringConstraints
from temporalio.client import Client, WorkflowFailureError

from clients.api.auth import require_admin
from clients.api.budget import admin_failure
from clients.api.errors import error_response, error_responses
from clients.api.json_types import JsonBool
from clients.api.link_input import ANY_ACCOUNT
from config.settings import Settings
from contracts.enrollment import LinkCommand, LinkCommandResult, TenantLink
from contracts.names import WorkflowName
from contracts.providers import Provider
from contracts.reconcile import ReconcileInput, ReconcilePolicy, ReconcileResult
from contracts.vcenter_tokens import VcenterTokensInput
from scheduling import reconcile as schedules
from scheduling import vcenter_tokens as token_schedules

router = APIRouter(prefix="/v1/admin", tags=["reconcile"], dependencies=[Depends(require_admin)])


class ReconcileBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Provider | None = None
    account: Annotated[str, StringConstraints(pattern=ANY_ACCOUNT)] | None = None
    dry_run: JsonBool = False
    wait: JsonBool = False


def reconcile_input(settings: Settings, provider: Provider, cloud_account: str, dry_run: bool = False) -> ReconcileInput:
    return ReconcileInput(
        provider=provider,
        cloud_account=cloud_account,
        dry_run=dry_run,
        policy=ReconcilePolicy(patching_label=settings.labels.patching, patch_group_label=settings.labels.patch_group),
        queue_prefix=settings.task_queue_prefix,
    )


async def link_schedules(request: Request, link: TenantLink) -> dict[str, str]:
    """The linked account's schedules exist and match the settings: hourly reconcile, and for a
    vCenter the token schedule (tokens with no operator)."""
    settings: Settings = request.app.state.settings
    client = await request.app.state.gateway.client()
    inp = reconcile_input(settings, link.provider, link.cloud_account)
    answer = {"reconcile_schedule": await schedules.ensure_schedule(client, inp, link.customer, settings.reconcile.interval)}
    if link.provider is Provider.VMWARE:
        tokens = VcenterTokensInput(vcenter_id=link.cloud_account, customer=link.customer, public_keys=link.vcenter_public_keys,
                                    patching_label=settings.labels.patching, queue_prefix=settings.task_queue_prefix,
                                    scope=link.vcenter_scope)
        answer["token_schedule"] = await token_schedules.ensure_schedule(client, tokens, settings.vmware.token_interval)
    return answer


async def linked(client: Client, settings: Settings) -> list[TenantLink]:
    result = await client.execute_workflow(
        WorkflowName.LINK_ADMIN,
        LinkCommand(action="list", queue_prefix=settings.task_queue_prefix),
        id=f"links/list/{uuid.uuid4().hex[:8]}",
        task_queue=schedules.orchestrator_queue(settings.task_queue_prefix),
        result_type=LinkCommandResult,
        execution_timeout=timedelta(minutes=2),
    )
    return result.links


def _result_json(result: ReconcileResult) -> dict[str, Any]:
    return asdict(result)


@router.post("/reconcile", summary="Reconcile linked cloud accounts with SSM now (or show what would change)",
             responses={202: {"description": "runs started (without wait)"}, **error_responses(403, 404, 409, 502)})
async def reconcile(body: ReconcileBody, request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    client = await request.app.state.gateway.client()
    links = await linked(client, settings)
    targets = [l for l in links if body.provider in (None, l.provider) and body.account in (None, l.cloud_account)]
    if body.account is not None and not targets:
        return error_response("TenantNotLinked", f"account: {body.provider}/{body.account} is not linked", 404)
    handles = [
        await schedules.start_run(client, reconcile_input(settings, l.provider, l.cloud_account, body.dry_run))
        for l in targets
    ]
    if not body.wait:
        runs = [{"provider": l.provider.value, "cloud_account": l.cloud_account, "workflow_id": h.id}
                for l, h in zip(targets, handles, strict=True)]
        return JSONResponse({"runs": runs}, status_code=202)
    try:
        results = await asyncio.gather(*(h.result() for h in handles))
    except WorkflowFailureError as err:
        return admin_failure(err, "ReconcileFailed")
    return JSONResponse({"results": [_result_json(r) for r in results]})

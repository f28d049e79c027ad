"""Admin endpoints (bearer token) for tenant links: nothing enrolls unless its cloud account is linked."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from clients.api.auth import require_admin
from clients.api.budget import run_within_budget
from clients.api.errors import error_response, error_responses
from clients.api.link_input import ACCOUNT_EXAMPLES, ACCOUNT_FORMATS, ANY_ACCOUNT, CUSTOMER, LinkBody
from clients.api.openapi import budget_note, links_to, polled
from clients.api.routes import reconcile as reconcile_routes
from contracts import ids
from contracts.enrollment import AccountRef, LinkCommand, LinkCommandResult, LinkKey, SystemsAccount, TenantLink
from contracts.names import WorkflowName
from contracts.patching import EnsureWindowsInput
from contracts.providers import PatchGroup, Provider
from scheduling import ensure_window_schedules
from scheduling.holds import held_note, held_os

router = APIRouter(prefix="/v1/admin", tags=["links"], dependencies=[Depends(require_admin)])
_ADMIN_ERRORS = (401, 403, 502, 503)
_BUDGET = budget_note("FLEETPATCH_API__ADMIN_BUDGET", "10 s")
ProviderPath = Annotated[Provider, Path(description="gcp, azure, aws or vmware", examples=["gcp"])]
AccountPath = Annotated[str, Path(pattern=ANY_ACCOUNT, examples=ACCOUNT_EXAMPLES[:1],
                                  description="the cloud account id (project, subscription, account; a vmware link "
                                  "id: VCENTER, or VCENTER:NAME for a further link of a shared vCenter)")]
_ONE_LINK = {"provider": "$response.body#/provider", "cloud_account": "$response.body#/cloud_account"}
_FIRST_LINK = {"provider": "$response.body#/links/0/provider", "cloud_account": "$response.body#/links/0/cloud_account"}


def _link_json(link: TenantLink) -> dict[str, Any]:
    return {
        "provider": link.provider.value,
        "cloud_account": link.cloud_account,
        "customer": link.customer,
        "default_patch_group": PatchGroup(link.default_patch_group).value,
        "time_zone": link.time_zone,
        "role_arn": link.role_arn,
        "external_id": "***" if link.external_id else None,
        "vcenter_public_keys": link.vcenter_public_keys,
        "windows": link.windows,
        "vcenter_scope": link.vcenter_scope,
        "remote_access": link.remote_access,
    }


async def _link_command(request: Request, command: LinkCommand, workflow_id: str) -> LinkCommandResult:
    command.queue_prefix = request.app.state.settings.task_queue_prefix
    if command.action != "list":
        request.app.state.vcenter_keys.invalidate()  # registrations see a changed vCenter link at once
    return await run_within_budget(
        request, WorkflowName.LINK_ADMIN, command, workflow_id=f"{workflow_id}/{uuid.uuid4().hex[:8]}",
        result_type=LinkCommandResult, execution_timeout=timedelta(minutes=2),
    )


def _key(provider: Provider, cloud_account: str) -> LinkKey | None:
    """The link key, or None when the id cannot be one of ``provider``'s (so it is not linked)."""
    account = cloud_account.lower() if provider is Provider.AZURE else cloud_account
    return LinkKey(provider=provider, cloud_account=account) if re.match(ACCOUNT_FORMATS[provider], account) else None


def _not_linked(provider: Provider, cloud_account: str) -> JSONResponse:
    return error_response("NotFound", f"{provider.value}/{cloud_account} is not linked", 404)


@router.post(
    "/links", status_code=201, operation_id="addLink", description=_BUDGET,
    summary="Link a customer cloud account (nothing enrolls unless linked); again to change it",
    responses={201: {"description": "linked"}, 202: {"description": "still running; poll Location"},
               **error_responses(409, *_ADMIN_ERRORS)},
    openapi_extra=polled(links_to(201, getLink={"operationId": "getLink", "parameters": _ONE_LINK},
                                  removeLink={"operationId": "removeLink", "parameters": _ONE_LINK})),
)
async def add_link(body: Annotated[LinkBody, Body()], request: Request) -> JSONResponse:
    link = body.to_link()
    account = await _vended_account(request, link)
    # A link that allows remote access prepares its vended systems account at once.
    command = LinkCommand(action="put", link=link, account=account if link.remote_access else None)
    await _link_command(request, command, f"links/{link.provider.value}/{link.cloud_account}")
    answer = _link_json(link)
    answer["windows_updated"] = await _refresh_windows(request, link, account)
    answer.update(await reconcile_routes.link_schedules(request, link))
    return JSONResponse(answer, status_code=201)


async def _vended_account(request: Request, link: TenantLink) -> AccountRef | None:
    """The link's systems account when it has been vended already, else None."""
    client = await request.app.state.gateway.client()
    handle = client.get_workflow_handle(ids.systems_account(link.provider, link.cloud_account), result_type=SystemsAccount)
    try:
        if (await handle.describe()).status != WorkflowExecutionStatus.COMPLETED:
            return None
        account = await handle.result()
    except RPCError:
        return None
    return AccountRef(account_id=account.account_id, role_arn=account.role_arn,
                      external_id=account.external_id, region=account.region)


async def _refresh_windows(request: Request, link: TenantLink, account: AccountRef | None) -> list[str]:
    """A changed link (time zone, window overrides) re-shapes the windows of its systems account,
    when one has been vended already; otherwise its vending creates them from the new link."""
    if account is None:
        return []
    client = await request.app.state.gateway.client()
    result = await ensure_window_schedules(
        client,
        EnsureWindowsInput(
            account=account,
            customer=link.customer, provider=link.provider.value, cloud_account=link.cloud_account,
            time_zone=link.time_zone, windows=link.windows,
            queue_prefix=request.app.state.settings.task_queue_prefix,
        ),
    )
    return result.created + result.updated


async def _all_links(request: Request) -> list[TenantLink]:
    return (await _link_command(request, LinkCommand(action="list"), "links/list")).links


@router.get(
    "/links", operation_id="listLinks", summary="Every linked cloud account",
    responses={200: {"description": "`{\"links\": [...]}`"}, 202: {"description": "still running; poll Location"},
               **error_responses(*_ADMIN_ERRORS)},
    openapi_extra=links_to(200, getLink={"operationId": "getLink", "parameters": _FIRST_LINK}),
)
async def list_links(
    request: Request, customer: Annotated[str | None, Query(pattern=CUSTOMER)] = None
) -> JSONResponse:
    links = [l for l in await _all_links(request) if customer is None or l.customer == customer]
    held = await _held(request, {l.customer for l in links})
    return JSONResponse({"links": [_link_json(l) | {"held": held.get(l.customer)} for l in links]})


async def _held(request: Request, customers: set[str]) -> dict[str, str | None]:
    """Per customer: "<os>: held: no early instance of this OS" when a later ring only scanned
    an OS for want of an early instance (issue 14), else None; nothing when visibility fails."""
    client = await request.app.state.gateway.client()
    try:
        return {c: held_note(await held_os(client, c)) for c in sorted(customers)}
    except RPCError:
        return {}


@router.get(
    "/links/{provider}/{cloud_account}", operation_id="getLink", summary="One linked cloud account",
    responses=error_responses(404, *_ADMIN_ERRORS),
)
async def get_link(provider: ProviderPath, cloud_account: AccountPath, request: Request) -> JSONResponse:
    key = _key(provider, cloud_account)
    found = [l for l in await _all_links(request) if key and (l.provider, l.cloud_account) == (key.provider, key.cloud_account)]
    return JSONResponse(_link_json(found[0])) if found else _not_linked(provider, cloud_account)


@router.delete(
    "/links/{provider}/{cloud_account}", operation_id="removeLink", description=_BUDGET,
    summary="Unlink a cloud account: its VMs can no longer enroll",
    responses={202: {"description": "still running; poll Location"}, **error_responses(404, *_ADMIN_ERRORS)},
    openapi_extra=polled(),
)
async def remove_link(provider: ProviderPath, cloud_account: AccountPath, request: Request) -> JSONResponse:
    key = _key(provider, cloud_account)
    if key is None:
        return _not_linked(provider, cloud_account)
    result = await _link_command(request, LinkCommand(action="delete", key=key), f"links/{provider.value}/{key.cloud_account}")
    if not result.removed:
        return _not_linked(provider, cloud_account)
    return JSONResponse({"removed": f"{provider.value}/{key.cloud_account}"})

"""Admin endpoints (bearer token): tenant links and the enrollment ledger."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError

from clients.api.auth import require_admin
from clients.api.errors import error_response
from scheduling import ensure_window_schedules
from scheduling.vcenter_tokens import delete_token_schedule, ensure_token_schedule
from contracts import ids, taskqueues
from contracts import search_attributes as sa
from contracts.patch_config import WindowConfigError, validate_window_config, window_config
from contracts.models import VcenterTokensInput
from contracts.patching import EnsureWindowsInput
from contracts.enrollment import (
    AccountRef,
    LinkCommand,
    LinkCommandResult,
    LinkKey,
    ReenrollInput,
    ReenrollResult,
    SystemsAccount,
    TenantLink,
)
from contracts.providers import PatchGroup, Provider, WorkerRole

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])

_ACCOUNT_FORMATS = {
    Provider.GCP: re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"),
    Provider.AZURE: re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
    Provider.AWS: re.compile(r"^[0-9]{12}$"),
    Provider.VMWARE: re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"),
}
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")


class LinkBody(BaseModel):
    """A customer cloud account fleetpatch may enroll VMs from."""

    model_config = ConfigDict(extra="forbid")

    provider: Provider
    cloud_account: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    customer: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")]
    default_patch_group: PatchGroup = PatchGroup.ON_TIME
    time_zone: str = "UTC"
    role_arn: str | None = None
    external_id: Annotated[str, StringConstraints(min_length=2, max_length=1224)] | None = None
    vcenter_public_keys: list[str] = Field(default_factory=list, max_length=4)
    windows: dict[str, Any] = Field(default_factory=dict)
    # vmware: the folder or resource pool (inventory path) of this customer in a shared vCenter
    vcenter_scope: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _./-]{0,255}$")] | None = None
    remote_access: bool = False  # Session Manager into this account's VMs (advanced tier, logged)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - {g.value for g in PatchGroup})
        if unknown:
            raise ValueError(f"windows are keyed by patch group (early, on-time, late), not {unknown}")
        for group, overrides in value.items():
            if not isinstance(overrides, dict):
                raise ValueError(f"windows.{group} must be an object of window settings")
            try:
                validate_window_config(window_config(group, "UTC", overrides), group)
            except WindowConfigError as err:
                raise ValueError(str(err)) from None
        return value

    @model_validator(mode="after")
    def _per_provider(self) -> LinkBody:
        if self.provider is Provider.AZURE:
            self.cloud_account = self.cloud_account.lower()
        if not _ACCOUNT_FORMATS[self.provider].match(self.cloud_account):
            raise ValueError(f"{self.cloud_account!r} is not a {self.provider.value} cloud account id")
        if self.provider is Provider.AWS:
            match = _ROLE_ARN.match(self.role_arn or "")
            if not match:
                raise ValueError("an aws link needs role_arn: the cross-account role fleetpatch assumes")
            if match.group(1) != self.cloud_account:
                raise ValueError("role_arn must be a role in the linked account itself")
        elif self.role_arn or self.external_id:
            raise ValueError("role_arn/external_id belong to aws links only")
        if self.provider is Provider.VMWARE:
            if not self.vcenter_public_keys:
                raise ValueError("a vmware link needs vcenter_public_keys (PEM): the keys its tokens are signed with")
            for pem in self.vcenter_public_keys:
                try:
                    key = load_pem_public_key(pem.encode())
                except ValueError:
                    raise ValueError("vcenter_public_keys holds something that is not a PEM public key") from None
                if not isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
                    raise ValueError("vCenter token keys are Ed25519 or P-256")
        elif self.vcenter_public_keys or self.vcenter_scope:
            raise ValueError("vcenter_public_keys and vcenter_scope belong to vmware links only")
        return self

    def to_link(self) -> TenantLink:
        return TenantLink(**self.model_dump())


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


async def _run_link_command(request: Request, command: LinkCommand, workflow_id: str) -> LinkCommandResult:
    settings = request.app.state.settings
    command.queue_prefix = settings.task_queue_prefix
    client = await request.app.state.gateway.client()
    return await client.execute_workflow(
        "LinkAdmin",
        command,
        id=f"{workflow_id}/{uuid.uuid4().hex[:8]}",
        task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, settings.task_queue_prefix),
        result_type=LinkCommandResult,
        execution_timeout=timedelta(minutes=2),
    )


def _failed(err: WorkflowFailureError) -> JSONResponse:
    cause = err.cause
    while getattr(cause, "cause", None) is not None and not getattr(cause, "type", None):
        cause = cause.cause
    kind = getattr(cause, "type", None) or "CommandFailed"
    return error_response(kind, getattr(cause, "message", str(err)))


@router.post("/links", status_code=201, summary="Link a customer cloud account (nothing enrolls unless linked)")
async def add_link(body: LinkBody, request: Request) -> JSONResponse:
    link = body.to_link()
    account = await _vended_account(request, link)
    # A link that allows remote access prepares its vended systems account at once.
    command = LinkCommand(action="put", link=link, account=account if link.remote_access else None)
    try:
        await _run_link_command(request, command, f"links/{link.provider.value}/{link.cloud_account}")
    except WorkflowFailureError as err:
        return _failed(err)
    answer = _link_json(link)
    answer["windows_updated"] = await _refresh_windows(request, link, account)
    if link.provider is Provider.VMWARE:
        answer["token_schedule"] = await _ensure_token_schedule(request, link)
    return JSONResponse(answer, status_code=201)


async def _ensure_token_schedule(request: Request, link: TenantLink) -> str:
    """A linked vCenter's VMs get their tokens from a schedule (``vcenter-tokens/{vcenter}``), now and on."""
    settings = request.app.state.settings
    client = await request.app.state.gateway.client()
    inp = VcenterTokensInput(
        vcenter_id=link.cloud_account, patching_label=settings.labels.patching, queue_prefix=settings.task_queue_prefix
    )
    return await ensure_token_schedule(client, inp, link.customer, settings.vmware.token_schedule_every)


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


@router.get("/links", summary="Every linked cloud account")
async def list_links(request: Request, customer: str | None = None) -> JSONResponse:
    try:
        result = await _run_link_command(request, LinkCommand(action="list"), "links/list")
    except WorkflowFailureError as err:
        return _failed(err)
    links = [l for l in result.links if customer is None or l.customer == customer]
    return JSONResponse({"links": [_link_json(l) for l in links]})


@router.delete("/links/{provider}/{cloud_account}", summary="Unlink a cloud account: its VMs can no longer enroll")
async def remove_link(provider: Provider, cloud_account: str, request: Request) -> JSONResponse:
    key = LinkKey(provider=provider, cloud_account=cloud_account)
    try:
        result = await _run_link_command(request, LinkCommand(action="delete", key=key), f"links/{provider.value}/{cloud_account}")
    except WorkflowFailureError as err:
        return _failed(err)
    if not result.removed:
        return error_response("NotFound", f"{provider.value}/{cloud_account} is not linked", 404)
    answer: dict[str, Any] = {"removed": f"{provider.value}/{cloud_account}"}
    if provider is Provider.VMWARE:  # an unlinked vCenter's VMs get no more tokens
        client = await request.app.state.gateway.client()
        answer["token_schedule_deleted"] = await delete_token_schedule(client, cloud_account)
    return JSONResponse(answer)


_QUERY_VALUE = re.compile(r"^[A-Za-z0-9 _.:/@-]{1,128}$")


@router.get("/enrollments", summary="Enrollments, newest first, from Temporal visibility")
async def list_enrollments(
    request: Request,
    customer: str | None = None,
    provider: Provider | None = None,
    state: str | None = None,
    cloud_account: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    clauses = ["WorkflowType = 'EnrollVm'"]
    for attribute, value in (
        (sa.CUSTOMER, customer), (sa.PROVIDER, provider.value if provider else None),
        (sa.ENROLLMENT_STATE, state), (sa.CLOUD_ACCOUNT, cloud_account),
    ):
        if value is None:
            continue
        if not _QUERY_VALUE.match(value):
            return error_response("BadRequest", f"{attribute.name} has characters a filter cannot hold", 400)
        clauses.append(f"{attribute.name} = '{value}'")
    client = await request.app.state.gateway.client()
    rows = []
    async for execution in client.list_workflows(" AND ".join(clauses), limit=limit):
        attrs = execution.typed_search_attributes
        rows.append(
            {
                "workflow_id": execution.id,
                "run_id": execution.run_id,
                "status": execution.status.name if execution.status else None,
                "started": execution.start_time.isoformat() if execution.start_time else None,
                "provider": attrs.get(sa.PROVIDER),
                "instance_key": attrs.get(sa.INSTANCE_KEY),
                "customer": attrs.get(sa.CUSTOMER),
                "cloud_account": attrs.get(sa.CLOUD_ACCOUNT),
                "systems_account": attrs.get(sa.SYSTEMS_ACCOUNT),
                "patch_group": attrs.get(sa.PATCH_GROUP),
                "state": attrs.get(sa.ENROLLMENT_STATE),
            }
        )
    return JSONResponse({"enrollments": rows})


class ReenrollBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Provider
    instance_key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}/[A-Za-z0-9._:-]{1,128}$")]
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")] = "us-east-1"


@router.post("/enrollments/reenroll", summary="Allow an enrolled VM to enrol again (lifts trust on first use)")
async def allow_reenrollment(body: ReenrollBody, request: Request) -> JSONResponse:
    settings = request.app.state.settings
    client = await request.app.state.gateway.client()
    inp = ReenrollInput(
        provider=body.provider, instance_key=body.instance_key, region=body.region, queue_prefix=settings.task_queue_prefix
    )
    try:
        result = await client.execute_workflow(
            "AllowReenrollment",
            inp,
            id=f"reenroll/{body.provider.value}/{body.instance_key}/{uuid.uuid4().hex[:8]}",
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, settings.task_queue_prefix),
            result_type=ReenrollResult,
            execution_timeout=timedelta(minutes=5),
        )
    except WorkflowFailureError as err:
        return _failed(err)
    return JSONResponse({"done": result.done, "managed_instance_id": result.managed_instance_id})

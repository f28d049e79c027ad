"""What VMs call: a challenge (Azure), registration, the state of a pending enrollment, scripts."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from clients import startup
from clients.api import enrollment_ids
from clients.api.errors import ServiceMisconfigured, error_response
from clients.api.gateway import TemporalUnavailable
from clients.api.registration_input import (
    AzureIdentity,
    BadRequest,
    TooLarge,
    claimed_instance_key,
    parse_json,
    validate,
)
from clouds.azure.nonce import check_nonce, issue_nonce
from config.settings import Settings
from contracts import ids, taskqueues
from contracts import search_attributes as sa
from contracts.enrollment import (
    EnrollInput,
    EnrollmentPolicy,
    EnrollmentState,
    EnrollmentStatus,
    EnrollmentStatusQuery,
    RegistrationAnswer,
)
from contracts.errors import ErrorType, IdentityRefused
from contracts.providers import Provider, WorkerRole
from contracts.sealing import unseal

log = logging.getLogger("fleetpatch.api")
router = APIRouter(prefix="/v1", tags=["registration"])

_REGISTRATION_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RegistrationRequest"}}},
    }
}


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _sealing_key(settings: Settings) -> str:
    if settings.sealing_key is None:
        raise ServiceMisconfigured("this API has no sealing key (FLEETPATCH_SEALING_KEY)")
    return settings.sealing_key.get_secret_value()


def _challenge_key(settings: Settings) -> bytes | None:
    key = settings.api.challenge_key
    return key.get_secret_value().encode() if key else None


@router.get("/challenge", summary="A nonce for an Azure VM to have IMDS sign into its attested document")
async def challenge(request: Request) -> JSONResponse:
    settings = _settings(request)
    key = _challenge_key(settings)
    if key is None:
        return error_response("ConfigurationInvalid", "this API has no challenge key configured", 503)
    now = datetime.now(UTC)
    nonce = issue_nonce(key, now, settings.azure.nonce_ttl)
    return JSONResponse({"nonce": nonce, "expires_at": (now + settings.azure.nonce_ttl).isoformat()})


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the body is over {limit} bytes")
    return bytes(body)


def _answer_body(answer: RegistrationAnswer, enrollment_id: str, sealing_key: str) -> dict[str, Any]:
    """The VM's answer; the activation code is unsealed here, for this one response only."""
    activation = answer.activation
    code = unseal(sealing_key, activation.code) if activation else None
    return {
        "enrollment_id": enrollment_id,
        "activation": {"id": activation.id, "code": code, "region": activation.region} if activation else None,
        "systems_account": answer.systems_account,
        "patch_group": answer.patch_group,
        "managed_instance_id": answer.managed_instance_id,
    }


def _policy(settings: Settings) -> EnrollmentPolicy:
    return EnrollmentPolicy(
        patching_label=settings.labels.patching,
        patch_group_label=settings.labels.patch_group,
        activation_expiry_seconds=int(settings.aws.activation_expiry.total_seconds()),
        agent_online_timeout_seconds=int(settings.aws.agent_online_timeout.total_seconds()),
    )


@router.post(
    "/registrations",
    status_code=201,
    summary="Register a VM by its cloud-signed identity",
    openapi_extra=_REGISTRATION_SCHEMA,
    responses={
        201: {"description": "enrolled far enough to register its agent"},
        202: {"description": "the customer's systems account is still being vended; poll Location"},
        400: {"description": "malformed"},
        401: {"description": "identity refused (type + reason)"},
        403: {"description": "cloud account not linked, or patching label not 'true'"},
        409: {"description": "already enrolled, or an enrollment for this instance is running"},
        413: {"description": "body over 64 KiB"},
        503: {"description": "Temporal unreachable"},
    },
)
async def register(request: Request) -> Response:
    settings = _settings(request)
    request.state.registration_provider = "unknown"  # counted by provider and outcome (observability.py)
    try:
        raw = parse_json(await _read_body(request, settings.api.max_body_bytes), settings.api.max_body_bytes)
        registration, identity = validate(raw)
        request.state.registration_provider = registration.provider.value
        key = claimed_instance_key(registration.provider, identity)
        nonce = identity.nonce if isinstance(identity, AzureIdentity) else None
        if nonce is not None:
            challenge_key = _challenge_key(settings)
            if challenge_key is None:
                return error_response("ConfigurationInvalid", "this API has no challenge key configured", 503)
            check_nonce(challenge_key, nonce, datetime.now(UTC))
    except TooLarge as err:
        return error_response("TooLarge", str(err), 413)
    except BadRequest as err:
        return JSONResponse({"error": "BadRequest", "reason": err.reason, "details": err.details}, status_code=400)
    except IdentityRefused as err:
        return error_response(err.type.value, err.reason)

    workflow_id = ids.enrollment(registration.provider, key)
    enrollment_id = enrollment_ids.new(workflow_id)
    inp = EnrollInput(
        provider=registration.provider,
        instance_key=key,
        identity=identity.model_dump(),
        hostname=registration.hostname,
        os=registration.platform.os,
        os_version=registration.platform.version,
        secret_digest=enrollment_id.digest,
        nonce=nonce,
        resource_id=identity.resource_id if isinstance(identity, AzureIdentity) else None,
        policy=_policy(settings),
        queue_prefix=settings.task_queue_prefix,
    )
    client = await request.app.state.gateway.client()
    start = WithStartWorkflowOperation(
        "EnrollVm",
        inp,
        id=workflow_id,
        task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, settings.task_queue_prefix),
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=sa_pairs(registration.provider, key),
    )
    try:
        handle = await client.start_update_with_start_workflow(
            "register",
            start_workflow_operation=start,
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            result_type=RegistrationAnswer,
        )
        answer: RegistrationAnswer = await asyncio.wait_for(
            handle.result(), timeout=settings.api.registration_wait.total_seconds()
        )
    except WorkflowAlreadyStartedError:
        await _settle(start)
        return _running(key)
    except WorkflowUpdateFailedError as err:
        return _failure_response(err.cause)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # The update was accepted and goes on: the VM polls for its answer.
        location = f"/v1/enrollments/{enrollment_id}"
        return JSONResponse(
            {"enrollment_id": str(enrollment_id), "state": EnrollmentState.VENDING.value},
            status_code=202,
            headers={"Location": location, "Retry-After": "10"},
        )
    except RPCError as err:
        if err.status == RPCStatusCode.ALREADY_EXISTS:
            await _settle(start)
            return _running(key)
        raise TemporalUnavailable(str(err)) from err
    log.info("registration answered", extra={"provider": registration.provider.value, "instance_key": key})
    return JSONResponse(_answer_body(answer, str(enrollment_id), _sealing_key(settings)), status_code=201)


def _running(key: str) -> JSONResponse:
    return error_response(
        ErrorType.ENROLLMENT_RUNNING.value, f"an enrollment for {key} is already running", **{"Retry-After": "30"}
    )


async def _settle(start: WithStartWorkflowOperation) -> None:
    """Collect the start operation's own copy of the refusal (else asyncio logs it as lost)."""
    try:
        await start.workflow_handle()
    except Exception:  # noqa: BLE001 - the same refusal the caller already handled
        pass


def sa_pairs(provider: Provider, key: str) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [SearchAttributePair(sa.PROVIDER, provider.value), SearchAttributePair(sa.INSTANCE_KEY, key)]
    )


def _failure_response(cause: BaseException | None) -> JSONResponse:
    if isinstance(cause, ApplicationError) and cause.type:
        return error_response(cause.type, cause.message)
    return error_response("EnrollmentFailed", str(cause) if cause else "the enrollment failed", 502)


@router.get("/enrollments/{enrollment_id}", summary="The state of a registration that answered 202")
async def enrollment(enrollment_id: str, request: Request) -> JSONResponse:
    parsed = enrollment_ids.parse(enrollment_id)
    if parsed is None:
        return error_response("NotFound", "no such enrollment", 404)
    client = await request.app.state.gateway.client()
    handle = client.get_workflow_handle(parsed.workflow_id)
    try:
        status: EnrollmentStatus = await handle.query(
            "status", EnrollmentStatusQuery(secret_digest=parsed.digest), result_type=EnrollmentStatus
        )
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return error_response("NotFound", "no such enrollment", 404)
        raise TemporalUnavailable(str(err)) from err
    if not status.owner:
        # The run exists but the secret does not match: reveal nothing about it.
        return error_response("NotFound", "no such enrollment", 404)
    if status.answer is not None:
        return JSONResponse(_answer_body(status.answer, enrollment_id, _sealing_key(_settings(request))), status_code=200)
    if status.error_type:
        return error_response(status.error_type, status.reason or "the enrollment failed")
    return JSONResponse(
        {"enrollment_id": enrollment_id, "state": status.state.value},
        status_code=202,
        headers={"Retry-After": "10"},
    )


@router.get("/startup/{provider}", summary="The startup script a VM runs at boot", response_class=PlainTextResponse)
async def startup_script(provider: Provider, request: Request, os: Literal["linux", "windows"] = "linux") -> Response:
    """Bash for Linux, PowerShell for Windows, with this API's public URL baked in."""
    settings = _settings(request)
    base = settings.api.public_url or str(request.base_url).rstrip("/")
    try:
        text = startup.render(provider, os, api_url=base, audience=settings.gcp.audience)
    except ValueError as err:
        return error_response("ConfigurationInvalid", str(err), 503 if settings.api.public_url else 400)
    return PlainTextResponse(text, media_type=startup.media_type(os) if os == "linux" else "text/x-powershell; charset=utf-8")

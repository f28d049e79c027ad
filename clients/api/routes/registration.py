"""What VMs call: a challenge (Azure), registration, the state of a pending enrollment, scripts."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple

from fastapi import APIRouter, Depends, Path, Request
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
from clients.api.errors import BadInput, ServiceMisconfigured, bad_request, error_response, error_responses
from clients.api.gateway import TemporalUnavailable
from clients.api.rate_limit import check_instance, limit_address, too_many
from clients.api.registration_input import (
    AzureIdentity,
    Registration,
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
    RegisterRequest,
    RegistrationAnswer,
)
from contracts.errors import ErrorType, IdentityRefused, TransientCloudError
from contracts.names import QueryName, UpdateName, WorkflowName
from contracts.providers import Provider, WorkerRole
from contracts.sealing import unseal

log = logging.getLogger("fleetpatch.api")
# Every route here is unauthenticated: each call first spends its source address's budget (429).
router = APIRouter(prefix="/v1", tags=["registration"], dependencies=[Depends(limit_address)])

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


@router.get("/challenge", operation_id="getChallenge", responses=error_responses(429, 503),
            summary="A nonce for an Azure VM to have IMDS sign into its attested document")
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


_REGISTRATION_DOC = (
    "Checks shape and size, then verifies the identity's signature and claims (a refusal is a 401 "
    "naming its type, and nothing else happens), then starts (update-with-start) the VM's EnrollVm "
    "workflow and waits for its answer up to the registration budget "
    "(`FLEETPATCH_API__REGISTRATION_WAIT`, default 20 s); past it, `202` with a `Location` to poll. "
    "A VM that registers again while its enrollment runs gets that enrollment's answer. Rate-limited "
    "per source address and per verified instance (`429` with `Retry-After`)."
)


class _Checked(NamedTuple):
    registration: Registration
    key: str
    nonce: str | None


@router.post(
    "/registrations",
    status_code=201,
    operation_id="registerVm",
    summary="Register a VM by its cloud-signed identity",
    description=_REGISTRATION_DOC,
    openapi_extra=_REGISTRATION_SCHEMA,
    responses={
        201: {"description": "enrolled far enough to register its agent"},
        202: {"description": "the customer's systems account is still being vended; poll Location",
              "headers": {"Location": {"schema": {"type": "string"}}}},
        **error_responses(400, 401, 403, 409, 410, 413, 429, 502, 503),
    },
)
async def register(request: Request) -> Response:
    settings = _settings(request)
    request.state.registration_provider = "unknown"  # counted by provider and outcome (observability.py)
    try:
        checked = await _checked_registration(request, settings)
        await request.app.state.proof.verify(checked.registration.identity, checked.key, checked.nonce)
    except TooLarge as err:
        return error_response("TooLarge", str(err), 413)
    except BadInput as err:
        return bad_request(err.reason, err.details)
    except IdentityRefused as err:
        log.info("registration refused", extra={"error_type": err.type.value})
        return error_response(err.type.value, err.reason, 401)
    except TransientCloudError:
        # Trust material (a JWKS, the vCenter keys) is unreachable: no verdict, so no work either.
        return error_response("IdentityUnverifiable", "the identity cannot be checked right now; retry later", 503,
                              **{"Retry-After": "10"})
    limited = check_instance(request, f"{checked.registration.cloud.value}/{checked.key}")
    if limited is not None:
        return limited
    workflow_id = ids.enrollment(checked.registration.cloud, checked.key)
    enrollment_id = enrollment_ids.new(workflow_id)
    start = _start_operation(settings, checked, workflow_id, _enroll_input(settings, checked, enrollment_id))
    return await _await_answer(request, settings, start, checked, enrollment_id)


async def _checked_registration(request: Request, settings: Settings) -> _Checked:
    """Size, strict JSON, the provider's identity shape, the claimed key, and an Azure nonce."""
    limit = settings.api.max_body_bytes
    registration = validate(parse_json(await _read_body(request, limit), limit))
    request.state.registration_provider = registration.cloud.value
    identity = registration.identity
    key = claimed_instance_key(identity)
    nonce = identity.nonce if isinstance(identity, AzureIdentity) else None
    if nonce is not None:
        challenge_key = _challenge_key(settings)
        if challenge_key is None:
            raise ServiceMisconfigured("this API has no challenge key configured")
        check_nonce(challenge_key, nonce, datetime.now(UTC))
    return _Checked(registration, key, nonce)


def _enroll_input(settings: Settings, checked: _Checked, enrollment_id: enrollment_ids.EnrollmentId) -> EnrollInput:
    registration, identity = checked.registration, checked.registration.identity
    return EnrollInput(
        provider=registration.cloud,
        instance_key=checked.key,
        identity=identity.model_dump(),
        hostname=registration.hostname,
        os=registration.platform.os,
        os_version=registration.platform.version,
        secret_digest=enrollment_id.digest,
        nonce=checked.nonce,
        resource_id=identity.resource_id if isinstance(identity, AzureIdentity) else None,
        policy=_policy(settings),
        queue_prefix=settings.task_queue_prefix,
    )


def _start_operation(settings: Settings, checked: _Checked, workflow_id: str, inp: EnrollInput) -> WithStartWorkflowOperation:
    return WithStartWorkflowOperation(
        WorkflowName.ENROLL_VM,
        inp,
        id=workflow_id,
        task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, settings.task_queue_prefix),
        # A running enrollment takes the update (a VM whose answer was lost gets it again); a closed
        # one (failed, refused, timed out) is followed by a new run.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=sa_pairs(checked.registration.cloud, checked.key),
    )


async def _await_answer(
    request: Request, settings: Settings, start: WithStartWorkflowOperation, checked: _Checked,
    enrollment_id: enrollment_ids.EnrollmentId,
) -> Response:
    """Update-with-start, then the answer within the registration budget (or 202 to poll)."""
    client = await request.app.state.gateway.client()
    try:
        handle = await client.start_update_with_start_workflow(
            UpdateName.REGISTER,
            RegisterRequest(secret_digest=enrollment_id.digest),
            start_workflow_operation=start,
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            result_type=RegistrationAnswer,
        )
        answer: RegistrationAnswer = await asyncio.wait_for(
            handle.result(), timeout=settings.api.registration_wait.total_seconds()
        )
    except WorkflowAlreadyStartedError:
        await _settle(start)
        return _running(checked.key)
    except WorkflowUpdateFailedError as err:
        return _failure_response(err.cause)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # The update was accepted and goes on: the VM polls for its answer.
        return JSONResponse(
            {"enrollment_id": str(enrollment_id), "state": EnrollmentState.VENDING.value},
            status_code=202,
            headers={"Location": f"/v1/enrollments/{enrollment_id}", "Retry-After": "10"},
        )
    except RPCError as err:
        if err.status == RPCStatusCode.ALREADY_EXISTS:
            await _settle(start)
            return _running(checked.key)
        if err.status == RPCStatusCode.RESOURCE_EXHAUSTED:
            # Too many registrations of this VM in flight at once (Temporal's per-workflow limit).
            await _settle(start)
            return too_many("for this instance", 5)
        raise TemporalUnavailable(str(err)) from err
    log.info("registration answered", extra={"provider": checked.registration.cloud.value, "instance_key": checked.key})
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
    """The enrollment's first search attributes, set by its start (so its first task upserts none)."""
    return TypedSearchAttributes([
        SearchAttributePair(sa.PROVIDER, provider.value),
        SearchAttributePair(sa.INSTANCE_KEY, key),
        SearchAttributePair(sa.ENROLLMENT_STATE, EnrollmentState.VERIFYING.value),
    ])


def _failure_response(cause: BaseException | None) -> JSONResponse:
    if isinstance(cause, ApplicationError) and cause.type:
        return error_response(cause.type, cause.message)
    return error_response("EnrollmentFailed", str(cause) if cause else "the enrollment failed", 502)


@router.get(
    "/enrollments/{enrollment_id}", operation_id="getEnrollment", summary="The state of a registration that answered 202",
    responses={202: {"description": "still enrolling; poll again"},
               **error_responses(401, 403, 404, 409, 410, 429, 502, 503)},
)
async def enrollment(
    enrollment_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,400}\.[A-Za-z0-9_-]{16,100}$")], request: Request
) -> JSONResponse:
    parsed = enrollment_ids.parse(enrollment_id)
    if parsed is None:
        return error_response("NotFound", "no such enrollment", 404)
    limited = check_instance(request, enrollment_id)
    if limited is not None:
        return limited
    client = await request.app.state.gateway.client()
    handle = client.get_workflow_handle(parsed.workflow_id)
    try:
        status: EnrollmentStatus = await handle.query(
            QueryName.STATUS, EnrollmentStatusQuery(secret_digest=parsed.digest), result_type=EnrollmentStatus
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


_SCRIPT = {"schema": {"type": "string"}}


@router.get(
    "/startup/{provider}", operation_id="getStartupScript", summary="The startup script a VM runs at boot",
    response_class=PlainTextResponse,
    responses={200: {"description": "bash (linux) or PowerShell (windows)",
                     "content": {"text/x-shellscript": _SCRIPT, "text/x-powershell": _SCRIPT}},
               **error_responses(429, 503)},
)
async def startup_script(provider: Provider, request: Request, os: Literal["linux", "windows"] = "linux") -> Response:
    """Bash for Linux, PowerShell for Windows, with this API's public URL and the SSM agent's
    download location and trust anchor baked in."""
    settings = _settings(request)
    base = settings.api.public_url or str(request.base_url).rstrip("/")
    try:
        trust = startup.trust_from_settings(settings.aws)
    except ValueError as err:  # the operator's key or fingerprints, never the caller's fault
        return error_response("ConfigurationInvalid", f"agent signing trust: {err}", 503)
    try:
        agent_url = settings.aws.agent_download_url.replace("{region}", settings.aws.region)
        text = startup.render(provider, os, api_url=base, audience=settings.gcp.audience, agent_url=agent_url,
                              agent_trust=trust)
    except ValueError as err:
        return error_response("ConfigurationInvalid", str(err), 503 if settings.api.public_url else 400)
    return PlainTextResponse(text, media_type=startup.media_type(os) if os == "linux" else "text/x-powershell; charset=utf-8")

"""Admin endpoints (bearer token): the enrollment ledger, re-enrollment, and polling admin operations."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StringConstraints
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from clients.api.auth import require_admin
from clients.api.budget import OPERATION_ID, failure, pending, run_within_budget, workflow_id_of
from clients.api.errors import error_response, error_responses
from clients.api.gateway import TemporalUnavailable
from clients.api.link_input import ANY_ACCOUNT, CUSTOMER
from clients.api.openapi import budget_note, polled
from contracts import search_attributes as sa
from contracts.enrollment import EnrollmentState, ReenrollInput, ReenrollResult
from contracts.names import WorkflowName
from contracts.providers import Provider

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])
_ADMIN_ERRORS = (401, 403, 502, 503)
INSTANCE_KEY = r"^[A-Za-z0-9._:-]{1,128}/[A-Za-z0-9._:-]{1,128}$"


def _row(execution: Any) -> dict[str, Any]:
    attrs = execution.typed_search_attributes
    return {
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


@router.get("/enrollments", operation_id="listEnrollments", summary="Enrollments, newest first, from Temporal visibility",
            responses=error_responses(*_ADMIN_ERRORS))
async def list_enrollments(
    request: Request,
    customer: Annotated[str | None, Query(pattern=CUSTOMER)] = None,
    provider: Provider | None = None,
    state: EnrollmentState | None = None,
    cloud_account: Annotated[str | None, Query(pattern=ANY_ACCOUNT)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    # Every value is an enum or matches a pattern without quotes: safe inside the query.
    clauses = [f"WorkflowType = '{WorkflowName.ENROLL_VM}'"]
    for attribute, value in (
        (sa.CUSTOMER, customer), (sa.PROVIDER, provider.value if provider else None),
        (sa.ENROLLMENT_STATE, state.value if state else None), (sa.CLOUD_ACCOUNT, cloud_account),
    ):
        if value is not None:
            clauses.append(f"{attribute.name} = '{value}'")
    client = await request.app.state.gateway.client()
    rows = [_row(execution) async for execution in client.list_workflows(" AND ".join(clauses), limit=limit)]
    return JSONResponse({"enrollments": rows})


class ReenrollBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"provider": "gcp", "instance_key": "acme-prod/1234567890123456789"}]})

    provider: Provider
    instance_key: Annotated[str, StringConstraints(pattern=INSTANCE_KEY)]
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")] = "us-east-1"


@router.post(
    "/enrollments/reenroll", operation_id="allowReenrollment",
    summary="Allow an enrolled VM to enrol again (lifts trust on first use)",
    description=budget_note("FLEETPATCH_API__ADMIN_BUDGET", "10 s"),
    responses={202: {"description": "still running; poll Location"}, **error_responses(404, 409, *_ADMIN_ERRORS)},
    openapi_extra=polled(),
)
async def allow_reenrollment(body: ReenrollBody, request: Request) -> JSONResponse:
    inp = ReenrollInput(provider=body.provider, instance_key=body.instance_key, region=body.region,
                        queue_prefix=request.app.state.settings.task_queue_prefix)
    result = await run_within_budget(
        request, WorkflowName.ALLOW_REENROLLMENT, inp,
        workflow_id=f"reenroll/{body.provider.value}/{body.instance_key}/{uuid.uuid4().hex[:8]}",
        result_type=ReenrollResult, execution_timeout=timedelta(minutes=5),
    )
    return JSONResponse({"done": result.done, "managed_instance_id": result.managed_instance_id})


@router.get(
    "/operations/{operation_id}", operation_id="getOperation",
    summary="An admin operation that answered 202: 202 while it runs, then its result or its failure",
    responses={202: {"description": "still running"}, **error_responses(404, 409, *_ADMIN_ERRORS)},
)
async def operation(operation_id: Annotated[str, Path(pattern=OPERATION_ID)], request: Request) -> JSONResponse:
    workflow_id = workflow_id_of(operation_id)
    if workflow_id is None:
        return error_response("NotFound", "no such operation", 404)
    handle = (await request.app.state.gateway.client()).get_workflow_handle(workflow_id)
    try:
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            return pending(workflow_id)
        result = await handle.result()
    except WorkflowFailureError as err:
        return failure(err)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return error_response("NotFound", "no such operation", 404)
        raise TemporalUnavailable(str(err)) from err
    return JSONResponse({"operation_id": operation_id, "state": "completed", "result": _public(workflow_id, result)})


def _public(workflow_id: str, result: Any) -> Any:
    """A finished run's result as the API shows it: link ExternalIds masked, as in every answer."""
    if workflow_id.startswith("links/") and isinstance(result, dict):
        for link in result.get("links") or []:
            if isinstance(link, dict) and link.get("external_id"):
                link["external_id"] = "***"
    return result

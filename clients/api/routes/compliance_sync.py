"""ComplianceSync on demand (admin token only; a customer token is answered 403).

POST /v1/admin/compliance/sync[?wait=true]   {"accounts": [...]}  202 {"workflow_id"} + Location | 200 result
GET  /v1/admin/compliance/sync/{workflow_id}                       its progress (accounts done / total)
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from temporalio.service import RPCError, RPCStatusCode

from clients.api.auth import require_admin
from clients.api.errors import error_response, error_responses
from clients.api.openapi import links_to
from scheduling import compliance as sync_runs

router = APIRouter(prefix="/v1/admin/compliance/sync", tags=["compliance"], dependencies=[Depends(require_admin)])

SYNC_ID = r"^compliance-sync[A-Za-z0-9/:_.-]{0,120}$"
ACCOUNT = r"^[0-9]{12}$"


class SyncBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[Annotated[str, Field(pattern=ACCOUNT)]] = Field(default_factory=list, max_length=500,
                                                                    description="only these systems accounts")


def _status_doc(workflow_id: str, status: object) -> dict:
    doc = jsonable_encoder(asdict(status))  # type: ignore[call-overload]
    return {"workflow_id": workflow_id, **doc, "finished": doc.get("phase") == "done"}


@router.post("", summary="Run ComplianceSync now (wait=true answers when it is done)", status_code=202,
             operation_id="start_compliance_sync",
             responses={200: {"description": "wait=true: the finished sync's result"}, **error_responses(401, 403)},
             openapi_extra=links_to(202, progress={"operationId": "compliance_sync_progress",
                                                   "parameters": {"workflow_id": "$response.body#/workflow_id"}}))
async def start(request: Request, body: SyncBody | None = None,
                wait: Annotated[bool, Query(description="answer with the result when the sync ends")] = False) -> JSONResponse:
    settings = request.app.state.settings
    client = await request.app.state.gateway.client()
    handle = await sync_runs.start_sync(client, settings.compliance, queue_prefix=settings.task_queue_prefix,
                                        request=uuid.uuid4().hex, only_accounts=body.accounts if body else [])
    location = f"/v1/admin/compliance/sync/{handle.id}"
    if not wait:
        return JSONResponse({"workflow_id": handle.id, "status_url": location}, 202, headers={"Location": location})
    result = await handle.result()
    return JSONResponse({"workflow_id": handle.id, **jsonable_encoder(asdict(result))}, 200)


@router.get("/{workflow_id:path}", summary="Progress of a ComplianceSync run", operation_id="compliance_sync_progress",
            responses=error_responses(401, 403, 404))
async def progress(request: Request, workflow_id: Annotated[str, Path(pattern=SYNC_ID)]) -> JSONResponse:
    client = await request.app.state.gateway.client()
    try:
        status = await sync_runs.sync_status(client, workflow_id)
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return error_response("NotFound", f"no compliance sync {workflow_id}", 404)
        raise
    return JSONResponse(_status_doc(workflow_id, status))

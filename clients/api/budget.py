"""Admin mutations answer within a budget: their result, their failure at once, or 202 to poll.

``run_within_budget`` starts a workflow and waits for it up to ``FLEETPATCH_API__ADMIN_BUDGET``
(default 10 s). A result is returned to the route; a failed workflow is answered at once with
its business failure (``ErrorBody``, status from ``clients.api.errors``); a run still going past
the budget is answered ``202`` with ``Location: /v1/admin/operations/{operation_id}``, which
answers 202 while it runs, then 200 with its result or its failure.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import timedelta
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from temporalio.client import WorkflowFailureError

from clients.api.errors import error_response, status_for
from contracts import taskqueues
from contracts.errors import ErrorType
from contracts.failures import business_failure
from contracts.providers import WorkerRole

T = TypeVar("T")

#: Workflow ids an operation id may name: only the admin API's own runs can be polled.
OPERATION_PREFIXES = ("links/", "reenroll/", "patch-window/")
OPERATION_ID = r"^[A-Za-z0-9_-]{4,400}$"
#: What a failure type means to an admin where it differs from what it means to a VM: a cloud
#: account that is not linked refuses a VM (403) but is, to an admin, one fleetpatch does not know
#: (404; 403 is what a token that may not call the route gets).
ADMIN_STATUSES = {ErrorType.TENANT_NOT_LINKED.value: 404}
#: Share of the budget kept for what follows the wait (rendering, a link's window refresh), at most 1 s.
_MARGIN_SHARE, _MARGIN_MAX = 0.1, 1.0


class Deadline:
    """The admin budget of one request, counted from when the route began, less a margin for answering."""

    def __init__(self, budget_seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._end = self._loop.time() + budget_seconds - min(_MARGIN_MAX, budget_seconds * _MARGIN_SHARE)

    @classmethod
    def of(cls, request: Request) -> Deadline:
        return cls(request.app.state.settings.api.admin_budget.total_seconds())

    def left(self, floor: float = 0.1) -> float:
        return max(floor, self._end - self._loop.time())


class EarlyAnswer(Exception):
    """The route is answered now (202 to poll, or the workflow's failure); the app sends it."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def operation_id(workflow_id: str) -> str:
    return base64.urlsafe_b64encode(workflow_id.encode()).decode().rstrip("=")


def workflow_id_of(value: str) -> str | None:
    """The admin workflow an operation id names, or None."""
    try:
        workflow_id = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return workflow_id if workflow_id.startswith(OPERATION_PREFIXES) else None


def pending(workflow_id: str) -> JSONResponse:
    op = operation_id(workflow_id)
    location = f"/v1/admin/operations/{op}"
    return JSONResponse({"operation_id": op, "workflow_id": workflow_id, "state": "running"}, status_code=202,
                        headers={"Location": location, "Retry-After": "2"})


def admin_failure(err: WorkflowFailureError, fallback: str) -> JSONResponse:
    """A failed admin operation (reconcile, offboarding) with the typed failure along its cause chain.

    An identity-refusal type here does not mean the caller's token was refused (that would be a
    401): the link names something fleetpatch cannot reach or verify, e.g. a vCenter it has no
    connection to; that is a conflict the operator resolves by fixing the link (409).
    """
    found = business_failure(err)
    if found is None:
        return error_response(fallback, str(err.cause or err), 502)
    status = ADMIN_STATUSES.get(found.type) or status_for(found.type)
    return error_response(found.type, found.message, 409 if status == 401 else status)


def failure(err: WorkflowFailureError) -> JSONResponse:
    """A failed admin workflow's answer: its business failure (``ADMIN_STATUSES`` first)."""
    found = business_failure(err)
    if found is None:
        return error_response("WorkflowFailed", str(err.cause or err), 502)
    return error_response(found.type, found.message, ADMIN_STATUSES.get(found.type))


async def run_within_budget(
    request: Request, workflow: str, arg: Any, *, workflow_id: str, result_type: type[T], execution_timeout: timedelta,
) -> T:
    """Start ``workflow`` on the orchestrator queue; its result within the budget, else EarlyAnswer.

    The budget counts from here, connecting and starting included, less a margin for answering.
    """
    deadline = Deadline.of(request)
    settings = request.app.state.settings
    client = await request.app.state.gateway.client()
    handle = await client.start_workflow(
        workflow, arg, id=workflow_id, result_type=result_type, execution_timeout=execution_timeout,
        task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, settings.task_queue_prefix),
    )
    try:
        return await asyncio.wait_for(handle.result(), deadline.left())
    except TimeoutError:
        raise EarlyAnswer(pending(workflow_id)) from None
    except WorkflowFailureError as err:
        raise EarlyAnswer(failure(err)) from None

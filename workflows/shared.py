"""Helpers every fleetpatch workflow uses: shared children, error unwrapping, search attributes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from contracts import taskqueues
    from contracts.enrollment import AwaitWorkflowInput
    from contracts.errors import ErrorType
    from contracts.failures import business_failure
    from contracts.models import ActivityName
    from contracts.providers import WorkerRole

T = TypeVar("T")


async def shared_child(
    workflow_run: Any,
    arg: Any,
    *,
    id: str,
    result_type: type[T],
    queue_prefix: str,
    execution_timeout: timedelta | None = None,
) -> T:
    """Run a child workflow that other workflows may share by id.

    The first caller starts it (it outlives its parent); a caller that finds it running, or
    finished successfully, waits for / reads that run's result instead. A failed run is replaced.
    """
    try:
        return await workflow.execute_child_workflow(
            workflow_run,
            arg,
            id=id,
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix),
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            parent_close_policy=ParentClosePolicy.ABANDON,
            execution_timeout=execution_timeout,
            result_type=result_type,
        )
    except WorkflowAlreadyStartedError:
        return await workflow.execute_activity(
            ActivityName.AWAIT_WORKFLOW,
            AwaitWorkflowInput(workflow_id=id),
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix),
            result_type=result_type,
            start_to_close_timeout=execution_timeout or timedelta(hours=2),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=2),
                maximum_interval=timedelta(seconds=30),
                non_retryable_error_types=[t.value for t in ErrorType if t.value != ErrorType.CLOUD_UNAVAILABLE],
            ),
        )


def application_error(err: BaseException) -> ApplicationError:
    """The business error inside an activity/child failure, or a generic one."""
    found = business_failure(err)
    if found is not None:
        return ApplicationError(found.message, type=found.type, non_retryable=True)
    return ApplicationError(str(err), type="InternalError", non_retryable=True)


def upsert(*pairs: SearchAttributePair[Any]) -> None:
    workflow.upsert_search_attributes(list(pairs))

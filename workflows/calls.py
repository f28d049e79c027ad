"""The one way a fleetpatch workflow calls an activity or a child workflow, and waits.

``Calls(queue_prefix)`` places every call on its role's task queue (prefixed, so test runs that
share a server stay apart) with a named preset from ``workflows.options``:

    calls = Calls(inp.queue_prefix)
    link = await calls.activity(WorkerRole.AWS, ActivityName.GET_LINK, key, GetLinkResult, options.AWS_CONTROL)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from contracts import taskqueues
    from contracts.enrollment import AwaitWorkflowInput
    from contracts.models import ActivityName
    from contracts.providers import WorkerRole
    from workflows import options
    from workflows.options import ActivityPreset, ChildPreset

T = TypeVar("T")

#: The input of an activity that takes none (``list_links``).
NO_INPUT: Any = object()


@dataclass(frozen=True)
class Calls:
    queue_prefix: str = ""

    def queue(self, role: WorkerRole) -> str:
        return taskqueues.for_role(role, self.queue_prefix)

    async def activity(self, role: WorkerRole, name: str, arg: Any, result_type: type[T] | None, preset: ActivityPreset) -> T:
        """Run activity ``name`` on ``role``'s task queue and return its result as ``result_type``."""
        args = [] if arg is NO_INPUT else [arg]
        return await workflow.execute_activity(
            name, args=args, task_queue=self.queue(role), result_type=result_type, **preset.kwargs()
        )

    async def local(self, name: str, arg: Any, result_type: type[T] | None, preset: ActivityPreset) -> T:
        """Run activity ``name`` in the worker that runs this workflow (it needs what only that
        worker holds, such as its Temporal client)."""
        return await workflow.execute_local_activity(name, arg, result_type=result_type, **preset.local_kwargs())

    async def child(self, run: Any, arg: Any, *, id: str, result_type: type[T] | None, preset: ChildPreset) -> T:
        """Run child workflow ``run`` (its ``@workflow.run`` method) to its result."""
        return await workflow.execute_child_workflow(
            run, arg, id=id, task_queue=self.queue(WorkerRole.ORCHESTRATOR), result_type=result_type, **preset.kwargs()
        )

    async def start_child(self, run: Any, arg: Any, *, id: str, preset: ChildPreset) -> workflow.ChildWorkflowHandle:
        """Start child workflow ``run`` and hand back its handle (its result is awaited later)."""
        return await workflow.start_child_workflow(
            run, arg, id=id, task_queue=self.queue(WorkerRole.ORCHESTRATOR), **preset.kwargs()
        )

    async def shared_child(
        self, run: Any, arg: Any, *, id: str, result_type: type[T], preset: ChildPreset = options.SHARED_CHILD
    ) -> T:
        """Run a child workflow that other workflows may share by id.

        The first caller starts it (it outlives its parent); a caller that finds it running, or
        finished successfully, waits for / reads that run's result instead. A failed run is replaced.
        """
        try:
            return await self.child(run, arg, id=id, result_type=result_type, preset=preset)
        except WorkflowAlreadyStartedError:
            return await self.activity(
                WorkerRole.ORCHESTRATOR,
                ActivityName.AWAIT_WORKFLOW,
                AwaitWorkflowInput(workflow_id=id),
                result_type,
                options.await_workflow(preset.execution_timeout),
            )


async def wait_until(condition: Callable[[], bool], timeout: timedelta | None) -> bool:
    """Wait for ``condition``; True when it holds, False when ``timeout`` passed first."""
    try:
        await workflow.wait_condition(condition, timeout=timeout)
    except TimeoutError:
        return False
    return True


def timed_out(err: ActivityError) -> bool:
    """Whether an activity failed because one of its timeouts (its caller's deadline) ran out."""
    return isinstance(err.cause, TemporalTimeout)

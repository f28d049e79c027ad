"""EnsurePatchWindows: create (or update) the window schedules of one systems account.

Started by SystemsAccount once the account exists, without waiting for it: an enrollment never
waits on schedule bookkeeping, and Temporal retries it until it is done.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts import taskqueues
    from contracts.patching import EnsureWindowsInput, EnsureWindowsResult, PatchingActivity
    from contracts.providers import WorkerRole
    from workflows import options
    from workflows.shared import upsert


def ensure_windows_id(account_id: str) -> str:
    return f"patch-windows/{account_id}"


@workflow.defn(name="EnsurePatchWindows")
class EnsurePatchWindowsWorkflow:
    @workflow.run
    async def run(self, inp: EnsureWindowsInput) -> EnsureWindowsResult:
        upsert(sa.SYSTEMS_ACCOUNT.value_set(inp.account.account_id))
        if inp.customer:
            upsert(sa.CUSTOMER.value_set(inp.customer))
        return await workflow.execute_activity(
            PatchingActivity.ENSURE_WINDOW_SCHEDULES,
            inp,
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, inp.queue_prefix),
            result_type=EnsureWindowsResult,
            **options.AWS_CONTROL.kwargs(),
        )


async def start_ensure_windows(inp: EnsureWindowsInput) -> None:
    """From a workflow: start EnsurePatchWindows for the account and do not wait for it."""
    try:
        await workflow.start_child_workflow(
            EnsurePatchWindowsWorkflow.run,
            inp,
            id=ensure_windows_id(inp.account.account_id),
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, inp.queue_prefix),
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            parent_close_policy=ParentClosePolicy.ABANDON,
            execution_timeout=timedelta(hours=1),
        )
    except WorkflowAlreadyStartedError:
        pass  # another enrollment of this account is ensuring them right now

"""Workers for patch-window tests: the real workflows on the orchestrator queue, the fake fleet's
activities under the real names on the aws queue, all on the test's own queue prefix."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from contracts import taskqueues
from contracts.enrollment import AccountRef
from contracts.patch_config import WindowConfig, window_config
from contracts.patching import PatchWindowInput, WindowSummary
from contracts.providers import PatchGroup, WorkerRole
from tests.unit.patching.fake_ssm import FakeSsm
from workers.interceptors import ErrorMappingInterceptor
from workflows.patch_batch import PatchBatchWorkflow
from workflows.patch_window import PatchWindowWorkflow


@asynccontextmanager
async def workers(client: Client, prefix: str, fake: FakeSsm) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for role, activities, workflows in (
            (WorkerRole.ORCHESTRATOR, [], [PatchWindowWorkflow, PatchBatchWorkflow]),
            (WorkerRole.AWS, fake.activities(), []),
        ):
            await stack.enter_async_context(
                Worker(client, task_queue=taskqueues.for_role(role, prefix), activities=activities,
                       workflows=workflows, interceptors=[ErrorMappingInterceptor()])
            )
        yield


def account(prefix: str) -> AccountRef:
    """An account id of this test alone (ring records are per account)."""
    number = str(int(prefix[1:11], 16) % 10**12).zfill(12)
    return AccountRef(account_id=number, role_arn=f"arn:aws:iam::{number}:role/OrganizationAccountAccessRole")


def window_input(prefix: str, group: PatchGroup, acct: AccountRef, config: WindowConfig | None = None, **kw) -> PatchWindowInput:
    return PatchWindowInput(account=acct, group=group, customer="acme",
                            config=config or window_config(group), queue_prefix=prefix, **kw)


async def start(client: Client, inp: PatchWindowInput) -> WorkflowHandle:
    return await client.start_workflow(
        "PatchWindow", inp, id=f"patch-window/{inp.account.account_id}/{inp.group.value}-{uuid.uuid4().hex[:8]}",
        task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, inp.queue_prefix), result_type=WindowSummary,
    )


async def run(client: Client, inp: PatchWindowInput) -> WindowSummary:
    return await (await start(client, inp)).result()


async def histories(client: Client, handle: WorkflowHandle) -> dict[str, int]:
    """Event counts of every run under a window: the parent, each child and each run a child
    continued into (children found in the parent's history, continuations in each history)."""
    counts: dict[str, int] = {}
    parent = await handle.fetch_history()
    counts[handle.id] = len(parent.events)
    for event in parent.events:
        if event.event_type != EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            continue
        execution = event.child_workflow_execution_started_event_attributes.workflow_execution
        run_id = execution.run_id
        while run_id:
            history = await client.get_workflow_handle(execution.workflow_id, run_id=run_id).fetch_history()
            counts[f"{execution.workflow_id}@{run_id}"] = len(history.events)
            last = history.events[-1]
            run_id = (last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                      if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW else "")
    return counts

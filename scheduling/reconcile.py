"""Reconcile schedules and runs: one Temporal Schedule per linked cloud account,
``reconcile/{provider}/{cloud account}`` (hourly by default), and on-demand runs.

Shared by the admin API (``/v1/admin/reconcile``, link changes) and whatever else talks to
Temporal from outside. A schedule keeps its pause state when it is brought up to date.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowHandle,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from contracts import ids, taskqueues
from contracts import search_attributes as sa
from contracts.names import WorkflowName
from contracts.providers import WorkerRole
from contracts.reconcile import ReconcileInput, ReconcileResult

#: One run never takes longer than this (listing and acting on a large account included).
RUN_TIMEOUT = timedelta(minutes=50)


def orchestrator_queue(prefix: str) -> str:
    return taskqueues.for_role(WorkerRole.ORCHESTRATOR, prefix)


def _attributes(inp: ReconcileInput, customer: str) -> TypedSearchAttributes:
    return TypedSearchAttributes([
        SearchAttributePair(sa.PROVIDER, inp.provider.value),
        SearchAttributePair(sa.CLOUD_ACCOUNT, inp.cloud_account),
        SearchAttributePair(sa.CUSTOMER, customer),
    ])


def build_schedule(inp: ReconcileInput, customer: str, every: timedelta, state: ScheduleState | None = None) -> Schedule:
    sid = ids.reconcile_schedule(inp.provider, inp.cloud_account)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WorkflowName.RECONCILE,
            inp,
            id=sid,
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, inp.queue_prefix),
            execution_timeout=RUN_TIMEOUT,
            typed_search_attributes=_attributes(inp, customer),
            static_summary=f"reconcile {inp.provider.value}/{inp.cloud_account}",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(catchup_window=every),
        state=state or ScheduleState(note=f"created for {customer}"),
    )


async def ensure_schedule(client: Client, inp: ReconcileInput, customer: str, every: timedelta) -> str:
    """Create the account's reconcile schedule, or bring it up to date keeping its pause state;
    answers ``created`` or ``updated``."""
    sid = ids.reconcile_schedule(inp.provider, inp.cloud_account)
    try:
        await client.create_schedule(sid, build_schedule(inp, customer, every), search_attributes=_attributes(inp, customer))
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    async def updater(update: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = build_schedule(inp, customer, every, state=update.description.schedule.state)
        return ScheduleUpdate(schedule=schedule, search_attributes=_attributes(inp, customer))

    await client.get_schedule_handle(sid).update(updater)
    return "updated"


async def pause_schedule(client: Client, provider: str, cloud_account: str, note: str) -> bool:
    """Pause the account's reconcile schedule; False when it has none."""
    return await pause(client, ids.reconcile_schedule(provider, cloud_account), note)


async def pause(client: Client, schedule_id: str, note: str) -> bool:
    """Pause one schedule; False when there is no such schedule."""
    handle = client.get_schedule_handle(schedule_id)
    try:
        await handle.pause(note=note)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def start_run(client: Client, inp: ReconcileInput) -> WorkflowHandle[object, ReconcileResult]:
    """Start one on-demand run (its own id, so it never collides with the hourly one)."""
    run = ("dry-run-" if inp.dry_run else "run-") + uuid.uuid4().hex[:10]
    return await client.start_workflow(
        WorkflowName.RECONCILE,
        inp,
        id=ids.reconcile_run(inp.provider, inp.cloud_account, run),
        task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, inp.queue_prefix),
        execution_timeout=RUN_TIMEOUT,
        result_type=ReconcileResult,
    )

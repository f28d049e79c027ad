"""The token schedule of a vmware link, ``vcenter-tokens/{link id}`` (``vc01`` or ``vc01:acme``):
created (or brought up to date, keeping its pause state) when the link is made. Shared by the API
and the CLI."""

from __future__ import annotations

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
)

from contracts import ids
from contracts.names import WorkflowName
from contracts.vcenter_tokens import VcenterTokensInput
from scheduling.reconcile import orchestrator_queue, pause


def build_schedule(inp: VcenterTokensInput, every: timedelta, state: ScheduleState | None = None) -> Schedule:
    sid = ids.vcenter_tokens_schedule(inp.vcenter_id)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WorkflowName.VCENTER_TOKENS, inp, id=sid, task_queue=orchestrator_queue(inp.queue_prefix),
            execution_timeout=max(every, timedelta(minutes=5)), static_summary=f"tokens for {inp.vcenter_id}",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(catchup_window=every),
        state=state or ScheduleState(note=f"created for {inp.customer}"),
    )


async def ensure_schedule(client: Client, inp: VcenterTokensInput, every: timedelta) -> str:
    """``created`` or ``updated`` (new keys or customer from a re-link reach the next run)."""
    sid = ids.vcenter_tokens_schedule(inp.vcenter_id)
    try:
        await client.create_schedule(sid, build_schedule(inp, every))
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    async def updater(update: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=build_schedule(inp, every, state=update.description.schedule.state))

    await client.get_schedule_handle(sid).update(updater)
    return "updated"


async def pause_schedule(client: Client, vcenter_id: str, note: str) -> bool:
    return await pause(client, ids.vcenter_tokens_schedule(vcenter_id), note)

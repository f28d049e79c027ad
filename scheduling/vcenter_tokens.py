"""The token schedule of a linked vCenter: ``vcenter-tokens/{vcenter}``.

Every ``every`` (default 10 minutes) it runs ``VcenterTokens``, which writes a token to each
labelled VM (inside the link's folder or resource pool) that lacks a valid one and rotates those
about to expire. Created or brought up to date when the vCenter is linked, and started at once,
so a new link's VMs hold tokens within seconds; a schedule keeps its pause state when updated.
``fleetpatch vcenter issue-tokens`` stays the manual trigger (it writes every token anew).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from contracts import ids, taskqueues
from contracts import search_attributes as sa
from contracts.models import VcenterTokensInput
from contracts.names import WorkflowName
from contracts.providers import Provider, WorkerRole

#: One run (one reconfigure per VM that needs a token) never takes longer than this.
RUN_TIMEOUT = timedelta(minutes=30)


def _attributes(inp: VcenterTokensInput, customer: str) -> TypedSearchAttributes:
    return TypedSearchAttributes([
        SearchAttributePair(sa.PROVIDER, Provider.VMWARE.value),
        SearchAttributePair(sa.CLOUD_ACCOUNT, inp.vcenter_id),
        SearchAttributePair(sa.CUSTOMER, customer),
    ])


def build_schedule(inp: VcenterTokensInput, customer: str, every: timedelta, state: ScheduleState | None = None) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WorkflowName.VCENTER_TOKENS,
            inp,
            id=ids.vcenter_tokens_schedule(inp.vcenter_id),
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, inp.queue_prefix),
            execution_timeout=RUN_TIMEOUT,
            typed_search_attributes=_attributes(inp, customer),
            static_summary=f"vCenter tokens {inp.vcenter_id}",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=every),
        state=state or ScheduleState(note=f"issues and rotates the tokens of {customer}'s VMs"),
    )


async def ensure_token_schedule(client: Client, inp: VcenterTokensInput, customer: str, every: timedelta) -> str:
    """Create the vCenter's token schedule (and run it now), or bring it up to date keeping its
    pause state and run it now; answers ``created`` or ``updated``."""
    sid = ids.vcenter_tokens_schedule(inp.vcenter_id)
    try:
        await client.create_schedule(
            sid, build_schedule(inp, customer, every), trigger_immediately=True, search_attributes=_attributes(inp, customer)
        )
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    async def updater(update: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = build_schedule(inp, customer, every, state=update.description.schedule.state)
        return ScheduleUpdate(schedule=schedule, search_attributes=_attributes(inp, customer))

    handle = client.get_schedule_handle(sid)
    await handle.update(updater)
    await handle.trigger(overlap=ScheduleOverlapPolicy.SKIP)  # a changed link (customer, folder) applies now
    return "updated"


async def delete_token_schedule(client: Client, vcenter_id: str) -> bool:
    """Delete an unlinked vCenter's token schedule; False when it had none."""
    try:
        await client.get_schedule_handle(ids.vcenter_tokens_schedule(vcenter_id)).delete()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True

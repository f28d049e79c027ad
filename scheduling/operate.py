"""Operating patch windows: pause, resume, trigger, wait, backfill, release a held ring."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleBackfill, ScheduleUpdate, ScheduleUpdateInput

from contracts.names import QueryName, SignalName
from contracts.patching import ReleaseRequest, WindowOutcome, WindowStatus, WindowSummary, earlier_ring
from contracts.providers import PatchGroup
from scheduling.ensure import current_input
from scheduling.views import WindowNotFound, describe, list_windows
from scheduling.windows import MAX_RECORDED_RELEASES, SCHEDULE_PREFIX, schedule_id


class WindowConflict(Exception):
    """The operation does not fit the window's state (a run is already going, early is not gated)."""


@dataclass
class ReleaseResult:
    kind: str  # "signalled": a held run proceeds now; "recorded": the next run honours it
    workflow_id: str  # the held run signalled, or the earlier-ring run whose result is waived


async def pause(client: Client, account_id: str, group: PatchGroup | str, note: str | None = None) -> None:
    await describe(client, account_id, group)
    await client.get_schedule_handle(schedule_id(account_id, group)).pause(note=note or "paused by an operator")


async def resume(client: Client, account_id: str, group: PatchGroup | str, note: str | None = None) -> None:
    await describe(client, account_id, group)
    await client.get_schedule_handle(schedule_id(account_id, group)).unpause(note=note or "resumed by an operator")


async def trigger(client: Client, account_id: str, group: PatchGroup | str, *, settle_seconds: float = 15.0) -> str:
    """Start a run now; returns its workflow id. Refused while a run is going (overlap SKIP)."""
    before = await describe(client, account_id, group)
    if before.info.running_actions:
        raise WindowConflict(f"a run is already in progress: {before.info.running_actions[0].workflow_id}")
    known = {a.action.workflow_id for a in before.info.recent_actions}
    await client.get_schedule_handle(before.id).trigger()
    deadline = asyncio.get_running_loop().time() + settle_seconds
    while True:
        now = await describe(client, account_id, group)
        started = [a.workflow_id for a in now.info.running_actions if a.workflow_id not in known]
        started += [a.action.workflow_id for a in now.info.recent_actions if a.action.workflow_id not in known]
        if started:
            return started[0]
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{before.id} was triggered but no run appeared within {settle_seconds:.0f} s")
        await asyncio.sleep(0.2)


async def wait(client: Client, workflow_id: str) -> WindowSummary:
    return await client.get_workflow_handle(workflow_id, result_type=WindowSummary).result()


async def backfill(client: Client, account_id: str, group: PatchGroup | str, start: datetime, end: datetime) -> None:
    """Run the windows the schedule would have run between ``start`` and ``end``, now."""
    if end <= start:
        raise ValueError("the backfill must end after it starts")
    await describe(client, account_id, group)
    await client.get_schedule_handle(schedule_id(account_id, group)).backfill(ScheduleBackfill(start_at=start, end_at=end))


async def release(
    client: Client, account_id: str, group: PatchGroup | str, *, by: str = "operator", reason: str = "",
    earlier_run: str | None = None,
) -> ReleaseResult:
    """Release a ring's gate: signal its held run, or, when none is waiting, record a release of
    the earlier ring's last runs that the next run of this ring honours: ``earlier_run``, else the
    last finished earlier run of every account of the window's customer (its gate judges them
    together)."""
    group = PatchGroup(group)
    earlier = earlier_ring(group)
    if earlier is None:
        raise WindowConflict("the early ring is never gated; there is nothing to release")
    description = await describe(client, account_id, group)
    for running in description.info.running_actions:
        handle = client.get_workflow_handle(running.workflow_id)
        status = await handle.query(QueryName.STATUS, result_type=WindowStatus)
        if status.outcome == WindowOutcome.HELD:
            await handle.signal(SignalName.RELEASE, ReleaseRequest(by=by, reason=reason))
            return ReleaseResult("signalled", running.workflow_id)
    if earlier_run is not None:
        runs = [earlier_run]
    else:
        customer = str((await description.memo()).get("customer", ""))
        runs = await _customer_earlier_runs(client, customer, account_id, earlier) or ["none"]

    async def updater(update: ScheduleUpdateInput) -> ScheduleUpdate | None:
        current = await current_input(client, update.description)
        if current is None:
            return None
        kept = [r for r in current.gate_releases if r not in runs]
        current.gate_releases = (kept + runs)[-MAX_RECORDED_RELEASES:]
        schedule = update.description.schedule
        assert isinstance(schedule.action, ScheduleActionStartWorkflow)
        schedule.action.args = [current]
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(description.id).update(updater)
    return ReleaseResult("recorded", ", ".join(runs))


async def release_customer(
    client: Client, customer: str, group: PatchGroup | str, *, by: str = "operator", reason: str = "",
) -> dict[str, ReleaseResult]:
    """Release ``group`` in every systems account of ``customer``: each held run proceeds, each
    window without one records the release of the earlier ring's runs of the whole customer.
    Account id -> what was done; WindowNotFound when the customer has no such window."""
    group = PatchGroup(group)
    accounts = sorted({v.account_id for v in await list_windows(client, customer=customer) if v.group == group.value})
    if not accounts:
        raise WindowNotFound(f"{SCHEDULE_PREFIX}*/{group.value} of customer {customer}")
    return {account: await release(client, account, group, by=by, reason=reason) for account in accounts}


async def _customer_earlier_runs(client: Client, customer: str, account_id: str, earlier: PatchGroup) -> list[str]:
    """The last finished run of ``earlier`` in every account of ``customer`` (or in
    ``account_id`` alone when the window names no customer)."""
    accounts = {account_id}
    if customer:
        accounts |= {v.account_id for v in await list_windows(client, customer=customer) if v.group == earlier.value}
    runs = [await _last_finished_run(client, account, earlier) for account in sorted(accounts)]
    return [run for run in runs if run]


async def _last_finished_run(client: Client, account_id: str, group: PatchGroup) -> str | None:
    try:
        description = await describe(client, account_id, group)
    except WindowNotFound:
        return None
    running = {r.workflow_id for r in description.info.running_actions}
    finished = [a.action.workflow_id for a in description.info.recent_actions if a.action.workflow_id not in running]
    return finished[-1] if finished else None

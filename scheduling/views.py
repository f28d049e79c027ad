"""Reading patch windows: describe one, list them, show one with its recent runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from temporalio.client import Client, ScheduleDescription
from temporalio.service import RPCError, RPCStatusCode

from contracts import search_attributes as sa
from contracts.errors import ErrorType, FleetpatchError
from contracts.patching import RING_ORDER
from contracts.providers import PatchGroup
from scheduling.ensure import current_input
from scheduling.windows import parse_schedule_id, schedule_id


class WindowNotFound(FleetpatchError):
    def __init__(self, schedule_id: str) -> None:
        super().__init__(ErrorType.WINDOW_NOT_FOUND, f"no patch window {schedule_id}")


@dataclass
class RunView:
    workflow_id: str
    started_at: datetime | None = None
    outcome: str | None = None
    running: bool = False


@dataclass
class WindowView:
    schedule_id: str
    account_id: str
    group: str
    customer: str = ""
    when: str = ""
    paused: bool = False
    note: str | None = None
    next_runs: list[datetime] = field(default_factory=list)
    recent: list[RunView] = field(default_factory=list)
    memo: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    gate_releases: list[str] = field(default_factory=list)


async def describe(client: Client, account_id: str, group: PatchGroup | str) -> ScheduleDescription:
    sid = schedule_id(account_id, group)
    try:
        return await client.get_schedule_handle(sid).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise WindowNotFound(sid) from None
        raise


async def list_windows(client: Client, *, account_id: str | None = None, customer: str | None = None) -> list[WindowView]:
    clauses = []
    if account_id:
        clauses.append(f"{sa.SYSTEMS_ACCOUNT.name} = {_quote(account_id)}")
    if customer:
        clauses.append(f"{sa.CUSTOMER.name} = {_quote(customer)}")
    views: list[WindowView] = []
    async for entry in await client.list_schedules(" AND ".join(clauses) or None):
        parsed = parse_schedule_id(entry.id)
        if parsed is None:
            continue
        memo = dict(await entry.memo())
        view = WindowView(schedule_id=entry.id, account_id=parsed[0], group=parsed[1].value,
                          customer=str(memo.get("customer", "")), when=str(memo.get("when", "")), memo=memo)
        if entry.schedule is not None:
            view.paused = entry.schedule.state.paused
            view.note = entry.schedule.state.note
        if entry.info is not None:
            view.next_runs = list(entry.info.next_action_times)[:3]
            view.recent = [RunView(a.action.workflow_id, a.started_at) for a in entry.info.recent_actions[-3:]
                           if hasattr(a.action, "workflow_id")]
        views.append(view)
    views.sort(key=lambda v: (v.account_id, [g.value for g in RING_ORDER].index(v.group)))
    return views


async def show(client: Client, account_id: str, group: PatchGroup | str) -> WindowView:
    description = await describe(client, account_id, group)
    current = await current_input(client, description)
    memo = dict(await description.memo())
    running = {r.workflow_id for r in description.info.running_actions}
    view = WindowView(
        schedule_id=description.id, account_id=account_id, group=PatchGroup(group).value,
        customer=str(memo.get("customer", "")), when=str(memo.get("when", "")),
        paused=description.schedule.state.paused, note=description.schedule.state.note,
        next_runs=list(description.info.next_action_times)[:5], memo=memo,
        config=asdict(current.config) if current else None,
        gate_releases=list(current.gate_releases) if current else [],
    )
    for action in description.info.recent_actions:
        workflow_id = action.action.workflow_id
        view.recent.append(RunView(workflow_id, action.started_at, await _outcome(client, workflow_id),
                                   running=workflow_id in running))
    return view


async def _outcome(client: Client, workflow_id: str) -> str | None:
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return None
    return described.typed_search_attributes.get(sa.WINDOW_OUTCOME)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

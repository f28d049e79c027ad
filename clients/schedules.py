"""Patch-window schedules: build, ensure, list, show, pause, resume, trigger, backfill, release.

Shared by the CLI (``fleetpatch windows``), the admin API (``/v1/admin/windows``) and the
orchestrator's ``ensure_window_schedules`` activity. One Temporal Schedule per systems account and
patch group, id ``patch-window/{account}/{group}``, overlap SKIP, spec in the link's IANA time
zone; memo and search attributes (SystemsAccount, PatchGroup, Customer, ...) make them readable in
``temporal schedule list`` and the UI.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleDescription,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from config.settings import PatchingSettings
from contracts import ids, taskqueues
from contracts import search_attributes as sa
from contracts.enrollment import AccountRef
from contracts.errors import ErrorType, FleetpatchError
from contracts.names import QueryName, SignalName
from contracts.patch_config import WindowConfig, window_config
from contracts.patching import (
    RING_ORDER,
    EnsureWindowsInput,
    EnsureWindowsResult,
    PatchWindowInput,
    ReleaseRequest,
    WindowOutcome,
    WindowStatus,
    WindowSummary,
    earlier_ring,
)
from contracts.providers import PatchGroup, WorkerRole

WORKFLOW = "PatchWindow"
SCHEDULE_PREFIX = "patch-window/"
#: How many pre-recorded releases a schedule keeps (the newest win).
MAX_RECORDED_RELEASES = 10
#: After its window, a run still collects results; never longer than this.
COLLECTION_MARGIN = timedelta(hours=3)


class WindowNotFound(FleetpatchError):
    def __init__(self, schedule_id: str) -> None:
        super().__init__(ErrorType.WINDOW_NOT_FOUND, f"no patch window {schedule_id}")


class WindowConflict(Exception):
    """The operation does not fit the window's state (a run is already going, early is not gated)."""


@dataclass
class RunShape:
    """Run parameters that come from settings, not from the link."""

    batch_size: int = 500
    max_parallel_batches: int = 4
    poll_interval_seconds: int = 30
    poll_hold_seconds: int = 300

    @classmethod
    def from_settings(cls, patching: PatchingSettings) -> RunShape:
        return cls(
            batch_size=patching.batch_size,
            max_parallel_batches=patching.max_parallel_batches,
            poll_interval_seconds=int(patching.poll_interval.total_seconds()),
            poll_hold_seconds=int(patching.poll_hold.total_seconds()),
        )


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


@dataclass
class ReleaseResult:
    kind: str  # "signalled": a held run proceeds now; "recorded": the next run honours it
    workflow_id: str  # the held run signalled, or the earlier-ring run whose result is waived


def schedule_id(account_id: str, group: PatchGroup | str) -> str:
    """The schedule of one window; ValueError unless the account is a 12-digit AWS account id."""
    if not (len(account_id) == 12 and account_id.isascii() and account_id.isdigit()):
        raise ValueError(f"{account_id!r} is not a systems account id (12 digits)")
    return ids.patch_window_schedule(account_id, group)


def parse_schedule_id(value: str) -> tuple[str, PatchGroup] | None:
    if not value.startswith(SCHEDULE_PREFIX):
        return None
    account, _, group = value[len(SCHEDULE_PREFIX):].partition("/")
    try:
        return account, PatchGroup(group)
    except ValueError:
        return None


# --- building -------------------------------------------------------------------------------


def schedule_spec(config: WindowConfig) -> ScheduleSpec:
    if config.cron:
        return ScheduleSpec(cron_expressions=[config.cron], time_zone_name=config.time_zone)
    first, last = config.days_of_month
    calendar = ScheduleCalendarSpec(
        second=(ScheduleRange(0),),
        minute=(ScheduleRange(config.minute),),
        hour=(ScheduleRange(config.hour),),
        day_of_month=(ScheduleRange(first, last),),
        day_of_week=(ScheduleRange(config.day_of_week),),
        comment=config.describe_when(),
    )
    return ScheduleSpec(calendars=[calendar], time_zone_name=config.time_zone)


def _attributes(window: PatchWindowInput, inp: EnsureWindowsInput) -> TypedSearchAttributes:
    pairs = [SearchAttributePair(sa.SYSTEMS_ACCOUNT, window.account.account_id),
             SearchAttributePair(sa.PATCH_GROUP, window.group.value)]
    for key, value in ((sa.CUSTOMER, inp.customer), (sa.CLOUD_ACCOUNT, inp.cloud_account), (sa.PROVIDER, inp.provider)):
        if value:
            pairs.append(SearchAttributePair(key, value))
    return TypedSearchAttributes(pairs)


def _memo(window: PatchWindowInput, inp: EnsureWindowsInput) -> dict[str, Any]:
    config = window.config
    return {
        "systems_account": window.account.account_id,
        "patch_group": window.group.value,
        "customer": inp.customer,
        "cloud_account": inp.cloud_account,
        "when": config.describe_when(),
        "duration_minutes": config.duration_minutes,
        "cutoff_minutes": config.cutoff_minutes,
        "max_concurrency": config.max_concurrency,
        "max_errors": config.max_errors,
        "reboot": config.reboot,
    }


def build_schedule(window: PatchWindowInput, inp: EnsureWindowsInput, state: ScheduleState | None = None) -> Schedule:
    config = window.config
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW,
            window,
            id=schedule_id(window.account.account_id, window.group),
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, window.queue_prefix),
            execution_timeout=timedelta(minutes=config.duration_minutes) + COLLECTION_MARGIN,
            memo=_memo(window, inp),
            typed_search_attributes=_attributes(window, inp),
            static_summary=f"{window.group.value} patch window of {window.account.account_id}",
        ),
        spec=schedule_spec(config),
        # A run missed while Temporal was down still starts if its dispatch time is not over.
        policy=SchedulePolicy(catchup_window=timedelta(minutes=max(1, config.cutoff_offset_minutes))),
        state=state or ScheduleState(note=f"created for {inp.customer or window.account.account_id}"),
    )


def window_inputs(inp: EnsureWindowsInput, shape: RunShape) -> list[PatchWindowInput]:
    """The three rings' run inputs (WindowConfigError when the link's overrides are invalid)."""
    account = AccountRef(account_id=inp.account.account_id, role_arn=inp.account.role_arn,
                         external_id=inp.account.external_id, region=inp.account.region)
    return [
        PatchWindowInput(
            account=account, group=group, customer=inp.customer,
            config=window_config(group, inp.time_zone, (inp.windows or {}).get(group.value)),
            queue_prefix=inp.queue_prefix, batch_size=shape.batch_size,
            max_parallel_batches=shape.max_parallel_batches, poll_interval_seconds=shape.poll_interval_seconds,
            poll_hold_seconds=shape.poll_hold_seconds,
        )
        for group in RING_ORDER
    ]


# --- ensure ---------------------------------------------------------------------------------


async def ensure_window_schedules(client: Client, inp: EnsureWindowsInput, shape: RunShape | None = None) -> EnsureWindowsResult:
    """Create the three schedules, or bring existing ones up to date keeping their pause state
    and recorded releases. Idempotent."""
    result = EnsureWindowsResult()
    for window in window_inputs(inp, shape or RunShape()):
        sid = schedule_id(window.account.account_id, window.group)
        try:
            await client.create_schedule(sid, build_schedule(window, inp), memo=_memo(window, inp),
                                         search_attributes=_attributes(window, inp))
            result.created.append(sid)
            continue
        except ScheduleAlreadyRunningError:
            pass

        async def updater(update: ScheduleUpdateInput, window: PatchWindowInput = window) -> ScheduleUpdate:
            current = await _current_input(client, update.description)
            if current is not None:
                window.gate_releases = current.gate_releases
            schedule = build_schedule(window, inp, state=update.description.schedule.state)
            return ScheduleUpdate(schedule=schedule, search_attributes=_attributes(window, inp))

        await client.get_schedule_handle(sid).update(updater)
        result.updated.append(sid)
    return result


async def _current_input(client: Client, description: ScheduleDescription) -> PatchWindowInput | None:
    action = description.schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow) or not action.args:
        return None
    args = list(action.args)
    if isinstance(args[0], PatchWindowInput):
        return args[0]
    decoded = await client.data_converter.decode(args, [PatchWindowInput])
    return decoded[0]


# --- reading --------------------------------------------------------------------------------


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
    current = await _current_input(client, description)
    memo = dict(await description.memo())
    running = {r.workflow_id for r in description.info.running_actions}
    view = WindowView(
        schedule_id=description.id, account_id=account_id, group=PatchGroup(group).value,
        customer=str(memo.get("customer", "")), when=str(memo.get("when", "")),
        paused=description.schedule.state.paused, note=description.schedule.state.note,
        next_runs=list(description.info.next_action_times)[:5], memo=memo,
        config=_config_dict(current.config) if current else None,
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


def _config_dict(config: WindowConfig) -> dict[str, Any]:
    return asdict(config)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- operating ------------------------------------------------------------------------------


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
    the earlier ring's last run that the next run of this ring honours."""
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
    if earlier_run is None:
        earlier_run = await _last_finished_run(client, account_id, earlier) or "none"

    async def updater(update: ScheduleUpdateInput) -> ScheduleUpdate | None:
        current = await _current_input(client, update.description)
        if current is None:
            return None
        if earlier_run not in current.gate_releases:
            current.gate_releases = (current.gate_releases + [earlier_run])[-MAX_RECORDED_RELEASES:]
        schedule = update.description.schedule
        assert isinstance(schedule.action, ScheduleActionStartWorkflow)
        schedule.action.args = [current]
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(description.id).update(updater)
    return ReleaseResult("recorded", earlier_run)


async def _last_finished_run(client: Client, account_id: str, group: PatchGroup) -> str | None:
    try:
        description = await describe(client, account_id, group)
    except WindowNotFound:
        return None
    running = {r.workflow_id for r in description.info.running_actions}
    finished = [a.action.workflow_id for a in description.info.recent_actions if a.action.workflow_id not in running]
    return finished[-1] if finished else None

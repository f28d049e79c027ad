"""Patch-window schedules, built: ids, run shape, the Temporal Schedule of one window.

One Temporal Schedule per systems account and patch group, id ``patch-window/{account}/{group}``,
overlap SKIP, spec in the link's IANA time zone; memo and search attributes (SystemsAccount,
PatchGroup, Customer, ...) make them readable in ``temporal schedule list`` and the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from config.settings import PatchingSettings
from contracts import ids, taskqueues
from contracts import search_attributes as sa
from contracts.enrollment import AccountRef
from contracts.names import WorkflowName
from contracts.patch_config import WindowConfig, window_config
from contracts.patching import RING_ORDER, EnsureWindowsInput, PatchWindowInput
from contracts.providers import PatchGroup, WorkerRole

SCHEDULE_PREFIX = "patch-window/"
#: How many pre-recorded releases a schedule keeps (the newest win).
MAX_RECORDED_RELEASES = 10
#: After its window, a run still collects results; never longer than this.
COLLECTION_MARGIN = timedelta(hours=3)


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


def schedule_attributes(window: PatchWindowInput, inp: EnsureWindowsInput) -> TypedSearchAttributes:
    pairs = [SearchAttributePair(sa.SYSTEMS_ACCOUNT, window.account.account_id),
             SearchAttributePair(sa.PATCH_GROUP, window.group.value)]
    for key, value in ((sa.CUSTOMER, inp.customer), (sa.CLOUD_ACCOUNT, inp.cloud_account), (sa.PROVIDER, inp.provider)):
        if value:
            pairs.append(SearchAttributePair(key, value))
    return TypedSearchAttributes(pairs)


def schedule_memo(window: PatchWindowInput, inp: EnsureWindowsInput) -> dict[str, Any]:
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
            WorkflowName.PATCH_WINDOW,
            window,
            id=schedule_id(window.account.account_id, window.group),
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, window.queue_prefix),
            execution_timeout=timedelta(minutes=config.duration_minutes) + COLLECTION_MARGIN,
            memo=schedule_memo(window, inp),
            typed_search_attributes=schedule_attributes(window, inp),
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

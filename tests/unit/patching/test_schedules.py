"""Schedule management against a real Temporal dev server: created when SystemsAccount configures
an account (its local activity), ensure, list, show, pause/resume, trigger --wait, release, backfill."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import scheduling as schedules
from activities.schedules import ScheduleActivities
from config.settings import PatchingSettings
from contracts import search_attributes as sa
from contracts import taskqueues
from contracts.enrollment import AccountRef, SystemsAccount, SystemsAccountInput
from contracts.patch_config import WindowConfigError
from contracts.patching import EnsureWindowsInput, PatchRef, RingRunRecord, WindowOutcome
from contracts.providers import PatchGroup, Provider, WorkerRole
from tests.unit.patching.fake_ssm import FakeSsm
from tests.unit.patching.harness import workers
from workflows.patch_window import PatchWindowWorkflow
from workflows.systems_account import SystemsAccountWorkflow

FAST = PatchingSettings(poll_interval=timedelta(seconds=1), poll_hold=timedelta(seconds=0))


@pytest.fixture
def account_id() -> str:
    return str(uuid.uuid4().int % 10**12).zfill(12)


def _ensure_input(account_id: str, prefix: str, **windows) -> EnsureWindowsInput:
    return EnsureWindowsInput(
        account=AccountRef(account_id=account_id, role_arn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole"),
        customer=f"acme-{account_id}", provider="aws", cloud_account=f"proj-{account_id}", time_zone="Europe/London",
        windows=windows, queue_prefix=prefix,
    )


async def test_configuring_an_account_creates_three_schedules_and_ensure_keeps_operator_state(
    dev_env: WorkflowEnvironment, queue_prefix: str, account_id: str
) -> None:
    client = dev_env.client
    inp = _ensure_input(account_id, queue_prefix, **{"late": {"hour": 4, "max_errors": "2"}})
    # SystemsAccount of an EC2 customer (its own account, no vending) ensures the windows.
    async with Worker(client, task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix),
                      workflows=[SystemsAccountWorkflow], activities=ScheduleActivities(client, FAST).all()):
        account = await client.execute_workflow(
            SystemsAccountWorkflow.run,
            SystemsAccountInput(provider=Provider.AWS, cloud_account=f"proj-{account_id}", customer=f"acme-{account_id}",
                                time_zone="Europe/London", role_arn=inp.account.role_arn, windows=inp.windows,
                                queue_prefix=queue_prefix),
            id=f"systems-account/aws/{account_id}-{uuid.uuid4().hex[:6]}",
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix), result_type=SystemsAccount)
    assert account.account_id == account_id
    ids = [schedules.schedule_id(account_id, g) for g in ("early", "on-time", "late")]

    early = await schedules.describe(client, account_id, PatchGroup.EARLY)
    spec = early.schedule.spec
    assert spec.time_zone_name == "Europe/London"
    calendar = spec.calendars[0]
    assert (calendar.day_of_month[0].start, calendar.day_of_month[0].end) == (8, 14)
    assert calendar.day_of_week[0].start == 2 and calendar.hour[0].start == 2
    assert early.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
    assert early.typed_search_attributes.get(sa.SYSTEMS_ACCOUNT) == account_id
    assert early.typed_search_attributes.get(sa.PATCH_GROUP) == "early"
    assert (await early.memo())["customer"] == f"acme-{account_id}"
    for next_run in early.info.next_action_times:  # the second Tuesday, 02:00 in London
        local = next_run.astimezone(ZoneInfo("Europe/London"))
        assert local.weekday() == 1 and 8 <= local.day <= 14 and local.hour == 2
    on_time = await schedules.describe(client, account_id, PatchGroup.ON_TIME)
    first_early, first_on_time = early.info.next_action_times[0], on_time.info.next_action_times[0]
    assert first_on_time - first_early in (timedelta(days=7), timedelta(days=7, hours=1), timedelta(days=7, hours=-1))
    late = await schedules.show(client, account_id, PatchGroup.LATE)
    assert late.config["hour"] == 4 and late.config["max_errors"] == "2" and late.config["days_of_month"] == [22, 28]

    await schedules.pause(client, account_id, PatchGroup.LATE, "change freeze")
    await schedules.release(client, account_id, PatchGroup.LATE, earlier_run="patch-window/x/on-time-1")
    again = await schedules.ensure_window_schedules(client, inp, schedules.RunShape.from_settings(FAST))
    assert again.updated == ids and again.created == []  # SystemsAccount created them
    late = await schedules.show(client, account_id, PatchGroup.LATE)
    assert late.paused and late.note == "change freeze"
    assert late.gate_releases == ["patch-window/x/on-time-1"]
    await schedules.resume(client, account_id, PatchGroup.LATE)
    assert not (await schedules.show(client, account_id, PatchGroup.LATE)).paused

    listed = await _eventually(lambda: schedules.list_windows(client, account_id=account_id), lambda v: len(v) == 3)
    assert [(v.group, v.customer) for v in listed] == [(g, f"acme-{account_id}") for g in ("early", "on-time", "late")]

    with pytest.raises(WindowConfigError):
        await schedules.ensure_window_schedules(client, _ensure_input(account_id, queue_prefix, early={"hour": 25}))
    with pytest.raises(schedules.WindowNotFound):
        await schedules.pause(client, "000000000000", PatchGroup.EARLY)


async def test_trigger_wait_and_the_gate_released_through_the_schedule(
    dev_env: WorkflowEnvironment, queue_prefix: str, account_id: str
) -> None:
    client = dev_env.client
    openssl, tzdata = PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15"), PatchRef("tzdata.all", "tzdata.all:2024a")
    fake = FakeSsm(catalogue={"ubuntu": [openssl, tzdata]}, run_polls=1)
    fake.add("ubuntu", PatchGroup.EARLY, 2, fails=1)  # fails openssl: only tzdata passes early
    on_time = fake.add("ubuntu", PatchGroup.ON_TIME, 2)
    await schedules.ensure_window_schedules(client, _ensure_input(account_id, queue_prefix, early={"max_errors": "1"}),
                                            schedules.RunShape.from_settings(FAST))
    async with workers(client, queue_prefix, fake):
        early_id = await schedules.trigger(client, account_id, PatchGroup.EARLY)
        early = await schedules.wait(client, early_id)
        assert early.outcome is WindowOutcome.COMPLETED_WITH_FAILURES and early.success_rate == 0.5

        held_id = await schedules.trigger(client, account_id, PatchGroup.ON_TIME)
        status = await _eventually(lambda: client.get_workflow_handle(held_id).query(PatchWindowWorkflow.status),
                                   lambda s: s.outcome is WindowOutcome.HELD)
        assert "below the 95% threshold" in (status.held_reason or "")
        with pytest.raises(schedules.WindowConflict):
            await schedules.trigger(client, account_id, PatchGroup.ON_TIME)  # overlap: one run at a time
        released = await schedules.release(client, account_id, PatchGroup.ON_TIME, by="bob", reason="one bad host")
        assert released.kind == "signalled" and released.workflow_id == held_id
        summary = await schedules.wait(client, held_id)
    assert summary.outcome is WindowOutcome.SUCCEEDED and summary.released_by == "bob"
    assert summary.train == {"ubuntu": 1}
    assert all(set(fake.instances[i].installed) == {(tzdata.id, tzdata.title)} for i in on_time)
    shown = await schedules.show(client, account_id, PatchGroup.ON_TIME)
    assert [(r.workflow_id, r.outcome) for r in shown.recent] == [(held_id, "succeeded")]
    record: RingRunRecord = fake.records[f"{account_id}/early"]
    assert record.workflow_id == early_id


async def test_recorded_release_names_the_earlier_rings_last_run_and_backfill_runs_a_past_window(
    dev_env: WorkflowEnvironment, queue_prefix: str, account_id: str
) -> None:
    client = dev_env.client
    fake = FakeSsm(catalogue={"ubuntu": [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")]}, run_polls=1)
    fake.add("ubuntu", PatchGroup.EARLY, 1, fails=1)
    await schedules.ensure_window_schedules(client, _ensure_input(account_id, queue_prefix),
                                            schedules.RunShape.from_settings(FAST))
    async with workers(client, queue_prefix, fake):
        early_id = await schedules.trigger(client, account_id, PatchGroup.EARLY)
        await schedules.wait(client, early_id)
        recorded = await schedules.release(client, account_id, PatchGroup.ON_TIME, reason="accepted risk")
        assert (recorded.kind, recorded.workflow_id) == ("recorded", early_id)
        on_time_id = await schedules.trigger(client, account_id, PatchGroup.ON_TIME)
        summary = await schedules.wait(client, on_time_id)
        assert summary.outcome is WindowOutcome.NO_TARGETS  # not held: the release named early's run
        assert any("released by an operator" in note for note in summary.notes)

        # Backfill the late window of December 2025 (Tuesday 23rd): it runs now, once.
        await schedules.backfill(client, account_id, PatchGroup.LATE, datetime(2025, 12, 1, tzinfo=UTC),
                                 datetime(2025, 12, 31, tzinfo=UTC))
        late = await _eventually(lambda: schedules.describe(client, account_id, PatchGroup.LATE),
                                 lambda d: len(d.info.recent_actions) == 1)
        action = late.info.recent_actions[0]
        assert action.scheduled_at.date() == datetime(2025, 12, 23).date()
        backfilled = await schedules.wait(client, action.action.workflow_id)
    assert backfilled.outcome is WindowOutcome.NO_TARGETS
    with pytest.raises(schedules.WindowConflict):
        await schedules.release(client, account_id, PatchGroup.EARLY)


async def _eventually(probe, done, attempts: int = 100):
    last = None
    for _ in range(attempts):
        try:
            last = await probe()
            if done(last):
                return last
        except Exception as err:  # not visible yet
            last = err
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not reached; last: {last!r}")

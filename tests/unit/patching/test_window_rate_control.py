"""Rate control of a PatchWindow on the time-skipping server: the cutoff, max errors, concurrency."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from contracts.patch_config import window_config
from contracts.patching import InstanceStatus, PatchRef, WindowOutcome
from contracts.providers import PatchGroup
from tests.unit.patching.fake_ssm import FakeSsm
from tests.unit.patching.harness import account, run, window_input, workers

UBUNTU = [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")]


async def test_cutoff_stops_dispatching_and_cancels_what_has_not_started(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str
) -> None:
    fake = FakeSsm(catalogue={"ubuntu": UBUNTU}, run_polls=10)  # each install: 10 polls of 60 s
    fake.add("ubuntu", PatchGroup.EARLY, 120)
    config = window_config(PatchGroup.EARLY, overrides={
        "max_concurrency": "10", "max_errors": "5", "duration_minutes": 60, "cutoff_minutes": 30})
    inp = window_input(queue_prefix, PatchGroup.EARLY, account(queue_prefix), config, poll_interval_seconds=60)
    async with workers(time_skipping_env.client, queue_prefix, fake):
        summary = await run(time_skipping_env.client, inp)

    cutoff = summary.started + timedelta(minutes=30)
    assert summary.outcome is WindowOutcome.CUT_OFF
    # One command in flight at a time (10 concurrent of 50): the first one only was sent.
    assert len(fake.sends) == 1 and all(sent_at < cutoff for sent_at, _ in fake.sends)
    assert fake.cancels and min(fake.cancels) >= cutoff
    # 30 finished before the cutoff, 10 were running (and finished), 10 waited and were cancelled.
    assert summary.succeeded == 40
    assert summary.cancelled == 10
    assert summary.not_dispatched == 70
    assert summary.targets == 120 and summary.success_rate == 40 / 120
    reasons = {r.status: r.reason for r in summary.instances}
    assert "cutoff" in reasons[InstanceStatus.NOT_DISPATCHED]
    assert fake.max_in_progress <= 10


async def test_max_errors_stops_the_run(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    fake = FakeSsm(catalogue={"ubuntu": UBUNTU}, run_polls=1)
    broken = fake.add("ubuntu", PatchGroup.EARLY, 20, fails=20)  # sorted first: in the first command
    fake.add("ubuntu", PatchGroup.EARLY, 180)
    config = window_config(PatchGroup.EARLY, overrides={"max_concurrency": "10", "max_errors": "5"})
    inp = window_input(queue_prefix, PatchGroup.EARLY, account(queue_prefix), config)
    async with workers(time_skipping_env.client, queue_prefix, fake):
        summary = await run(time_skipping_env.client, inp)

    assert summary.outcome is WindowOutcome.STOPPED_MAX_ERRORS
    assert summary.max_errors == 5
    assert summary.errors > 5
    # Past the budget nothing more was sent: one command (SSM's own MaxErrors ended it).
    assert len(fake.sends) == 1
    assert fake.sends[0][1].max_errors == "5"
    assert summary.failed == summary.errors < 20
    assert summary.not_dispatched == 150  # the three commands never sent
    assert summary.succeeded == 0
    assert {f.instance_id for f in summary.failures} <= set(broken)
    assert all("command failed" in f.reason for f in summary.failures)
    not_started = [r for r in summary.instances if r.status is InstanceStatus.CANCELLED]
    assert not_started and all("max errors" in r.reason for r in not_started)


async def test_window_concurrency_across_batches(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    fake = FakeSsm(catalogue={"ubuntu": UBUNTU}, run_polls=2)
    fake.add("ubuntu", PatchGroup.EARLY, 400)
    config = window_config(PatchGroup.EARLY, overrides={"max_concurrency": "25%", "max_errors": "0"})
    inp = window_input(queue_prefix, PatchGroup.EARLY, account(queue_prefix), config, batch_size=100)
    async with workers(time_skipping_env.client, queue_prefix, fake):
        summary = await run(time_skipping_env.client, inp)

    assert summary.outcome is WindowOutcome.SUCCEEDED and summary.succeeded == 400
    assert summary.max_concurrency == 100
    assert 50 < fake.max_in_progress <= 100  # two batches of 50 in flight, never more
    assert len(fake.sends) == 8 and all(len(spec.instance_ids) == 50 for _, spec in fake.sends)

"""A 10,000-instance window: every run's history stays under Temporal's 10,240-event limit."""

from __future__ import annotations

from collections import Counter

from temporalio.testing import WorkflowEnvironment

from contracts.patch_config import window_config
from contracts.patching import PatchRef, WindowOutcome
from contracts.providers import PatchGroup
from tests.unit.patching.fake_ssm import FakeSsm
from tests.unit.patching.harness import account, histories, start, window_input, workers

HISTORY_LIMIT = 10_240


async def test_ten_thousand_instances_stay_under_the_history_limit(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str
) -> None:
    fake = FakeSsm(catalogue={"ubuntu": [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")],
                              "windows": [PatchRef("KB5040437", "2024-07 Cumulative Update (KB5040437)")]},
                   run_polls=3)
    fake.add("ubuntu", PatchGroup.EARLY, 6_000)
    fake.add("windows", PatchGroup.EARLY, 4_000)
    config = window_config(PatchGroup.EARLY, overrides={"max_concurrency": "10%", "max_errors": "1%"})
    client = time_skipping_env.client
    async with workers(client, queue_prefix, fake):
        handle = await start(client, window_input(queue_prefix, PatchGroup.EARLY, account(queue_prefix), config))
        summary = await handle.result()
        counts = await histories(client, handle)

    assert summary.outcome is WindowOutcome.SUCCEEDED and summary.succeeded == 10_000
    assert summary.instances_truncated and summary.instances == []  # every row is in the S3 reports
    assert summary.train == {"ubuntu": 1, "windows": 1}
    # Every SendCommand names at most 50 instances; every instance was sent exactly once.
    assert all(len(spec.instance_ids) <= 50 for _, spec in fake.sends)
    sent = Counter(i for _, spec in fake.sends for i in spec.instance_ids)
    assert len(sent) == 10_000 and set(sent.values()) == {1}
    assert fake.max_in_progress <= 1_000  # 10% of the window
    # The parent, 20 batches: every run well below the limit.
    assert len(counts) == 21
    assert max(counts.values()) < HISTORY_LIMIT
    assert counts[handle.id] < 1_000


async def test_a_long_batch_continues_as_new_and_keeps_its_results(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str
) -> None:
    fake = FakeSsm(catalogue={"ubuntu": [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")]}, run_polls=4)
    fake.add("ubuntu", PatchGroup.EARLY, 100, fails=1)
    config = window_config(PatchGroup.EARLY, overrides={"max_concurrency": "5", "max_errors": "3"})
    inp = window_input(queue_prefix, PatchGroup.EARLY, account(queue_prefix), config, batch_history_limit=150)
    client = time_skipping_env.client
    async with workers(client, queue_prefix, fake):
        handle = await start(client, inp)
        summary = await handle.result()
        counts = await histories(client, handle)

    batch_runs = [key for key in counts if key != handle.id]
    assert len(batch_runs) > 2  # one batch, continued as new more than once
    assert max(counts.values()) < 300
    assert summary.outcome is WindowOutcome.COMPLETED_WITH_FAILURES
    assert summary.succeeded == 99 and summary.failed == 1 and summary.errors == 1
    assert len(fake.sends) == 2  # each of the two commands was sent once across the runs

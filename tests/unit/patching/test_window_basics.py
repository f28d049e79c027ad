"""PatchWindow end to end against the fake fleet: a plain early run."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from contracts.patching import InstanceStatus, WindowOutcome
from contracts.providers import PatchGroup
from contracts.patching import PatchRef
from tests.unit.patching.fake_ssm import FakeSsm
from tests.unit.patching.harness import account, run, window_input, workers


async def test_early_run_installs_and_records_train(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    fake = FakeSsm()
    fake.catalogue = {"ubuntu": [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")]}
    ids = fake.add("ubuntu", PatchGroup.EARLY, 3)
    acct = account(queue_prefix)
    async with workers(time_skipping_env.client, queue_prefix, fake):
        summary = await run(time_skipping_env.client, window_input(queue_prefix, PatchGroup.EARLY, acct))
    assert summary.outcome is WindowOutcome.SUCCEEDED, summary
    assert summary.succeeded == 3 and summary.targets == 3
    assert {r.status for r in summary.instances} == {InstanceStatus.SUCCEEDED}
    assert summary.train == {"ubuntu": 1}
    assert fake.installed_set(ids) == {("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")}

"""PatchWindow end to end against the fake fleet: a plain early run, scan first, untrained OSes."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from contracts.patch_config import window_config
from contracts.patching import InstanceStatus, Operation, PatchRef, WindowOutcome
from contracts.providers import PatchGroup
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
    # The window's last step hands every instance's result to the estate store.
    (recorded,) = fake.estate
    assert sorted(r.instance_id for r in recorded.instances) == sorted(ids)
    assert (recorded.window_workflow_id, recorded.patch_group, recorded.outcome) == (
        summary.workflow_id, "early", WindowOutcome.SUCCEEDED.value)


async def test_scan_first_scans_every_instance_before_installing(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    fake = FakeSsm(catalogue={"ubuntu": [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")]}, run_polls=2)
    fake.add("ubuntu", PatchGroup.EARLY, 120)
    config = window_config(PatchGroup.EARLY, overrides={"scan_first": True, "max_concurrency": "100%", "reboot": "NoReboot"})
    async with workers(time_skipping_env.client, queue_prefix, fake):
        summary = await run(time_skipping_env.client, window_input(queue_prefix, PatchGroup.EARLY, account(queue_prefix), config))
    assert summary.outcome is WindowOutcome.SUCCEEDED
    operations = [spec.operation for _, spec in fake.sends]
    assert operations == [Operation.SCAN] * 3 + [Operation.INSTALL] * 3
    first_install = fake.sends[3][0]
    scans = [c for c in fake.commands.values() if c.spec.operation is Operation.SCAN]
    assert all(set(c.status.values()) == {"Success"} for c in scans)
    assert all(sent_at <= first_install for sent_at, _ in fake.sends[:3])
    assert {spec.reboot for _, spec in fake.sends} == {"NoReboot"}


async def test_untrained_os_may_follow_its_baseline_but_never_ubuntu(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    fake = FakeSsm(catalogue={"ubuntu": [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")],
                              "rhel": [PatchRef("kernel.x86_64", "kernel.x86_64:0:5.14.0-427.el9")]})
    rhel = fake.add("rhel", PatchGroup.ON_TIME, 2)
    ubuntu = fake.add("ubuntu", PatchGroup.ON_TIME, 2)
    acct = account(queue_prefix)
    config = window_config(PatchGroup.ON_TIME, overrides={"untrained_os": "baseline"})
    async with workers(time_skipping_env.client, queue_prefix, fake):
        await run(time_skipping_env.client, window_input(queue_prefix, PatchGroup.EARLY, acct))  # no early targets
        summary = await run(time_skipping_env.client, window_input(queue_prefix, PatchGroup.ON_TIME, acct, config))
    assert summary.outcome is WindowOutcome.SUCCEEDED
    by_os = {spec.os: spec for _, spec in fake.sends}
    assert by_os["rhel"].operation is Operation.INSTALL and by_os["rhel"].install_override_list is None
    assert by_os["ubuntu"].operation is Operation.SCAN
    assert all(fake.instances[i].installed for i in rhel) and not any(fake.instances[i].installed for i in ubuntu)

"""Rings that span a customer's whole estate (the real PatchWindow workflow, a fake fleet): a
customer with a GCP project's systems account and an Azure subscription's, early VMs only in GCP,
on-time VMs in both."""

from __future__ import annotations

from dataclasses import replace

import yaml
from temporalio.testing import WorkflowEnvironment

from contracts.enrollment import AccountRef
from contracts.patch_config import window_config
from contracts.patching import DOCUMENT, HELD_NO_EARLY, Operation, PatchRef, RingRunRecord, WindowOutcome
from contracts.providers import PatchGroup
from tests.unit.patching.fake_ssm import FakeSsm
from tests.unit.patching.harness import account, run, start, window_input, workers

RHEL = [PatchRef("kernel.x86_64", "kernel.x86_64:0:4.18.0-513.9.1.el8_9"), PatchRef("sudo.x86_64", "sudo.x86_64:0:1.9.5p2-1")]
UBUNTU = [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15"), PatchRef("tzdata.all", "tzdata.all:2024a-0ubuntu0.22.04")]
WINDOWS = [PatchRef("KB5040437", "2024-07 Cumulative Update for Windows Server 2022 (KB5040437)")]


def _estate(prefix: str) -> tuple[AccountRef, AccountRef]:
    gcp = account(prefix)
    azure = replace(gcp, account_id=str((int(gcp.account_id) + 1) % 10**12).zfill(12),
                    role_arn=gcp.role_arn.replace(gcp.account_id, str((int(gcp.account_id) + 1) % 10**12).zfill(12)))
    return gcp, azure


def _fleet(gcp: AccountRef, azure: AccountRef, *, early_fails: int = 0) -> tuple[FakeSsm, dict[str, list[str]]]:
    fake = FakeSsm(catalogue={"ubuntu": list(UBUNTU), "windows": list(WINDOWS), "rhel": list(RHEL)})
    fake.customers["acme"] = [(gcp, f"gcp/acme-prod ({gcp.account_id})"), (azure, f"azure/sub-1 ({azure.account_id})")]
    vms = {
        "gcp-early": fake.add("ubuntu", PatchGroup.EARLY, 3, fails=early_fails, account=gcp.account_id)
        + fake.add("windows", PatchGroup.EARLY, 2, account=gcp.account_id),
        "gcp-on-time": fake.add("ubuntu", PatchGroup.ON_TIME, 2, account=gcp.account_id),
        "azure-on-time": fake.add("ubuntu", PatchGroup.ON_TIME, 2, account=azure.account_id)
        + fake.add("windows", PatchGroup.ON_TIME, 2, account=azure.account_id),
        "azure-rhel": fake.add("rhel", PatchGroup.ON_TIME, 2, account=azure.account_id),
        "azure-debian": fake.add("debian", PatchGroup.ON_TIME, 1, account=azure.account_id),
    }
    return fake, vms


async def test_the_azure_on_time_ring_installs_exactly_the_gcp_early_train(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str
) -> None:
    gcp, azure = _estate(queue_prefix)
    fake, vms = _fleet(gcp, azure)
    client = time_skipping_env.client
    async with workers(client, queue_prefix, fake):
        early = await run(client, window_input(queue_prefix, PatchGroup.EARLY, gcp))
        await run(client, window_input(queue_prefix, PatchGroup.EARLY, azure))  # no early VMs there
        fake.catalogue["ubuntu"].append(PatchRef("curl.amd64", "curl.amd64:7.81.0-1ubuntu1.17"))  # after early
        fake.catalogue["windows"].append(PatchRef("KB5041160", "2024-08 Cumulative Update (KB5041160)"))
        handle = await start(client, window_input(queue_prefix, PatchGroup.ON_TIME, azure))
        on_time_azure = await handle.result()
        memo = await (await handle.describe()).memo()
        on_time_gcp = await run(client, window_input(queue_prefix, PatchGroup.ON_TIME, gcp))

    trained = fake.installed_set(vms["gcp-early"])
    # Early and on-time runs say they are going before anything else (the next ring waits for them).
    for acct in (gcp, azure):
        for group in (PatchGroup.EARLY, PatchGroup.ON_TIME):
            written = [outcome for a, g, outcome in fake.ring_log if (a, g) == (acct.account_id, group)]
            assert written[0] is WindowOutcome.RUNNING and written[-1] is not WindowOutcome.RUNNING
    assert early.train == {"ubuntu": 2, "windows": 1}
    assert on_time_azure.outcome is WindowOutcome.SUCCEEDED, on_time_azure.notes
    assert "gcp/acme-prod" in on_time_azure.notes[0] and "azure/sub-1" in on_time_azure.notes[0]
    # One train for the customer: the same id in both accounts, each copy in its own bucket.
    assert on_time_azure.train_id == on_time_gcp.train_id == early.train_id
    assert on_time_azure.train == {"ubuntu": 2, "windows": 1}
    for instance in vms["azure-on-time"] + vms["gcp-on-time"]:
        got = set(fake.instances[instance].installed)
        assert got == {k for k in trained if k in {(p.id, p.title) for p in fake.catalogue[fake.instances[instance].os]}}
    assert ("curl.amd64", "curl.amd64:7.81.0-1ubuntu1.17") not in fake.installed_set(vms["azure-on-time"])
    azure_lists = {s.install_override_list for _, s in fake.sends if s.instance_ids[0] in vms["azure-on-time"]}
    assert all(url and url.startswith(f"s3://fake-bucket-{azure.account_id}/") for url in azure_lists)
    for url in azure_lists:
        assert {(e["id"], e["title"]) for e in yaml.safe_load(fake.s3[url])["patches"]} <= trained
    # RHEL: no early instance anywhere; its on-time baseline's approval decides.
    rhel_sends = [s for _, s in fake.sends if s.os == "rhel"]
    assert {(s.operation, s.install_override_list, s.document) for s in rhel_sends} == {(Operation.INSTALL, None, DOCUMENT)}
    assert all(fake.instances[i].installed for i in vms["azure-rhel"])
    # Debian: no early instance and no approval delay: scanned, and said so.
    assert {s.operation for _, s in fake.sends if s.os == "debian"} == {Operation.SCAN}
    assert on_time_azure.held_os == ["debian"] and memo["summary"]["held_os"] == ["debian"]  # the Temporal UI too
    assert any(HELD_NO_EARLY in note and "debian" in note for note in on_time_azure.notes)


async def test_a_failing_gcp_early_run_holds_both_on_time_rings_until_released_for_the_customer(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str
) -> None:
    gcp, azure = _estate(queue_prefix)
    fake, vms = _fleet(gcp, azure, early_fails=2)
    client = time_skipping_env.client
    early_config = window_config(PatchGroup.EARLY, overrides={"max_errors": "5"})
    async with workers(client, queue_prefix, fake):
        early = await run(client, window_input(queue_prefix, PatchGroup.EARLY, gcp, early_config))
        held = [await run(client, window_input(queue_prefix, PatchGroup.ON_TIME, a)) for a in (gcp, azure)]
        sent_while_held = len(fake.sends)
        blamed = fake.records[f"{gcp.account_id}/early"].workflow_id
        released = await run(client, window_input(queue_prefix, PatchGroup.ON_TIME, azure, gate_releases=[blamed]))
    assert early.success_rate is not None and early.success_rate < 0.95
    for summary in held:
        assert summary.outcome is WindowOutcome.HELD
        assert "of acme succeeded on 60.0% of 5 instances" in (summary.held_reason or "")
        assert f"gcp/acme-prod ({gcp.account_id}): 3/5 succeeded" in (summary.held_reason or "")
    assert sent_while_held == len([s for _, s in fake.sends if s.instance_ids[0] in vms["gcp-early"]])
    assert released.outcome is WindowOutcome.SUCCEEDED
    assert all(fake.instances[i].installed for i in vms["azure-on-time"])


async def test_a_later_ring_waits_for_the_early_ring_still_running_elsewhere_then_holds(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str
) -> None:
    gcp, azure = _estate(queue_prefix)
    fake, vms = _fleet(gcp, azure)
    client = time_skipping_env.client
    async with workers(client, queue_prefix, fake):
        await run(client, window_input(queue_prefix, PatchGroup.EARLY, gcp))
        done = fake.records[f"{gcp.account_id}/early"]
        # Azure's early window (another time zone) has opened and not ended.
        fake.records[f"{azure.account_id}/early"] = RingRunRecord(
            PatchGroup.EARLY, "patch-window/az/early-1", "r", done.started, done.started, WindowOutcome.RUNNING)
        config = window_config(PatchGroup.ON_TIME, overrides={"ring_wait_minutes": 90})
        held = await run(client, window_input(queue_prefix, PatchGroup.ON_TIME, gcp, config))
        # Once it ended, the next run proceeds.
        fake.records[f"{azure.account_id}/early"] = replace(done, workflow_id="patch-window/az/early-1", targets=0,
                                                            succeeded=0, success_rate=None, train=None,
                                                            outcome=WindowOutcome.NO_TARGETS)
        proceeds = await run(client, window_input(queue_prefix, PatchGroup.ON_TIME, gcp))
    assert held.outcome is WindowOutcome.HELD
    assert "still running after 90 minutes" in (held.held_reason or "") and "patch-window/az/early-1" in held.held_reason
    assert proceeds.outcome is WindowOutcome.SUCCEEDED
    assert all(fake.instances[i].installed for i in vms["gcp-on-time"])


async def test_ring_scope_account_keeps_to_its_own_early_ring(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    gcp, azure = _estate(queue_prefix)
    fake, _ = _fleet(gcp, azure)
    client = time_skipping_env.client
    async with workers(client, queue_prefix, fake):
        await run(client, window_input(queue_prefix, PatchGroup.EARLY, gcp))
        alone = await run(client, window_input(queue_prefix, PatchGroup.ON_TIME, azure,
                                               window_config(PatchGroup.ON_TIME, overrides={"ring_scope": "account"})))
    assert alone.outcome is WindowOutcome.HELD and "no early run is recorded" in (alone.held_reason or "")


def test_the_recorded_customer_ring_history_copied_and_installed_the_customer_train() -> None:
    """``tests/unit/histories/recorded/customer_*`` (replayed by test_replay_all) hold the new
    path: early marks itself running; on-time reads every account, copies the train, installs."""
    import base64
    import json
    from pathlib import Path

    recorded = Path(__file__).parents[1] / "histories" / "recorded"

    def activities(name: str) -> list[str]:
        events = json.loads((recorded / name).read_text())["history"]["events"]
        return [e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
                for e in events if "activityTaskScheduledEventAttributes" in e]

    assert activities("customer_early.json")[0] == "record_ring_run"
    assert activities("customer_on_time.json")[:3] == ["record_ring_run", "read_customer_rings", "copy_customer_train"]
    events = json.loads((recorded / "customer_on_time.json").read_text())["history"]["events"]
    result = json.loads(base64.b64decode(events[-1]["workflowExecutionCompletedEventAttributes"]["result"]["payloads"][0]["data"]))
    assert (result["outcome"], result["train"], result["held_os"], result["succeeded"]) == ("succeeded", {"ubuntu": 1}, ["debian"], 3)

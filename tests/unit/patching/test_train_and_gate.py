"""The patch train (later rings install exactly what early installed) and the promotion gate."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from contracts import search_attributes as sa
from contracts.patch_config import window_config
from contracts.patching import (
    DOCUMENT,
    DOCUMENT_WITH_HOOKS,
    Operation,
    PatchRef,
    ReleaseRequest,
    WindowOutcome,
    WindowStatus,
)
from contracts.providers import PatchGroup
from tests.unit.patching.fake_ssm import FakeSsm
from tests.unit.patching.harness import account, run, start, window_input, workers
from workflows.patch_window import PatchWindowWorkflow

UBUNTU = [
    PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15"),
    PatchRef("libssl3.amd64", "libssl3.amd64:3.0.2-0ubuntu1.15"),
    PatchRef("tzdata.all", "tzdata.all:2024a-0ubuntu0.22.04"),
]
WINDOWS = [
    PatchRef("KB5040437", "2024-07 Cumulative Update for Windows Server 2022 (KB5040437)"),
    PatchRef("KB890830", "Windows Malicious Software Removal Tool x64 - v5.126 (KB890830)"),
]
# Released after the early run: a rollout over two weeks must not pick these up.
UBUNTU_LATER = [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.16"), PatchRef("curl.amd64", "curl.amd64:7.81.0-1ubuntu1.17")]
WINDOWS_LATER = [PatchRef("KB5041160", "2024-08 Cumulative Update for Windows Server 2022 (KB5041160)")]


@pytest.mark.parametrize("os, released, later", [("ubuntu", UBUNTU, UBUNTU_LATER), ("windows", WINDOWS, WINDOWS_LATER)])
async def test_on_time_installs_exactly_what_early_installed(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str, os: str, released: list, later: list
) -> None:
    fake = FakeSsm(catalogue={os: list(released)})
    early = fake.add(os, PatchGroup.EARLY, 4)
    on_time = fake.add(os, PatchGroup.ON_TIME, 6)
    late = fake.add(os, PatchGroup.LATE, 3)
    acct = account(queue_prefix)
    client = time_skipping_env.client
    async with workers(client, queue_prefix, fake):
        first = await run(client, window_input(queue_prefix, PatchGroup.EARLY, acct))
        fake.catalogue[os] += later  # new patches appear during the rollout
        second = await run(client, window_input(queue_prefix, PatchGroup.ON_TIME, acct))
        fake.catalogue[os] += [PatchRef("zz-newest.amd64", "zz-newest.amd64:1")]
        third = await run(client, window_input(queue_prefix, PatchGroup.LATE, acct))

    installed_early = fake.installed_set(early)
    assert installed_early == {(p.id, p.title) for p in released}
    assert first.train == {os: len(released)}
    assert second.outcome is WindowOutcome.SUCCEEDED and third.outcome is WindowOutcome.SUCCEEDED
    for ids in (on_time, late):
        for instance in ids:
            assert set(fake.instances[instance].installed) == installed_early
    assert second.train_id == first.train_id == third.train_id
    # The commands of the later rings carried the train's list, in AWS's YAML format.
    later_sends = [spec for _, spec in fake.sends if spec.instance_ids[0] in on_time + late]
    assert later_sends and {s.document for s in later_sends} == {DOCUMENT}
    urls = {s.install_override_list for s in later_sends}
    assert len(urls) == 1 and next(iter(urls)).startswith("s3://")
    listed = yaml.safe_load(fake.s3[next(iter(urls))])["patches"]
    assert {(e["id"], e.get("title", "")) for e in listed} == installed_early


async def test_train_excludes_patches_that_failed_in_early(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    fake = FakeSsm(catalogue={"ubuntu": list(UBUNTU)})
    fake.add("ubuntu", PatchGroup.EARLY, 1, fails=1)  # reports openssl (first missing) FAILED
    fake.add("ubuntu", PatchGroup.EARLY, 40)
    config = window_config(PatchGroup.EARLY, overrides={"max_errors": "10"})
    async with workers(time_skipping_env.client, queue_prefix, fake):
        summary = await run(time_skipping_env.client, window_input(queue_prefix, PatchGroup.EARLY, account(queue_prefix), config))
    assert summary.outcome is WindowOutcome.COMPLETED_WITH_FAILURES
    assert summary.train == {"ubuntu": len(UBUNTU) - 1}
    url = next(iter(fake.s3))
    assert "openssl.amd64" not in {e["id"] for e in yaml.safe_load(fake.s3[url])["patches"]}


async def test_an_os_early_did_not_patch_is_only_scanned(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    fake = FakeSsm(catalogue={"ubuntu": list(UBUNTU), "debian": [PatchRef("bash.amd64", "bash.amd64:5.2.15-2+b7")]})
    fake.add("ubuntu", PatchGroup.EARLY, 2)
    debian = fake.add("debian", PatchGroup.ON_TIME, 2)  # no debian instance in early
    fake.add("ubuntu", PatchGroup.ON_TIME, 2)
    acct = account(queue_prefix)
    async with workers(time_skipping_env.client, queue_prefix, fake):
        await run(time_skipping_env.client, window_input(queue_prefix, PatchGroup.EARLY, acct))
        summary = await run(time_skipping_env.client, window_input(queue_prefix, PatchGroup.ON_TIME, acct))
    debian_specs = [spec for _, spec in fake.sends if spec.os == "debian"]
    assert {s.operation for s in debian_specs} == {Operation.SCAN}
    assert all(not fake.instances[i].installed for i in debian)
    assert any("debian" in note and "scan only" in note for note in summary.notes)


async def test_hooks_on_a_train_ring_are_refused_unless_allowed(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    fake = FakeSsm(catalogue={"ubuntu": list(UBUNTU)})
    fake.add("ubuntu", PatchGroup.EARLY, 2)
    on_time = fake.add("ubuntu", PatchGroup.ON_TIME, 2)
    acct = account(queue_prefix)
    hooks = {"hooks": {"pre_install": "Acme-StopApp", "on_exit": "Acme-StartApp"}}
    client = time_skipping_env.client
    async with workers(client, queue_prefix, fake):
        early = await run(client, window_input(queue_prefix, PatchGroup.EARLY, acct, window_config(PatchGroup.EARLY, overrides=hooks)))
        refused = await run(client, window_input(queue_prefix, PatchGroup.ON_TIME, acct,
                                                 window_config(PatchGroup.ON_TIME, overrides=hooks)))
        allowed = await run(client, window_input(queue_prefix, PatchGroup.ON_TIME, acct, window_config(
            PatchGroup.ON_TIME, overrides={**hooks, "hooks_on_train": "without-hooks"})))
    assert early.outcome is WindowOutcome.SUCCEEDED
    assert fake.sends[0][1].document == DOCUMENT_WITH_HOOKS
    assert fake.sends[0][1].parameters()["PreInstallHookDocName"] == ["Acme-StopApp"]
    assert refused.outcome is WindowOutcome.REFUSED and "InstallOverrideList" in refused.notes[-1]
    assert allowed.outcome is WindowOutcome.SUCCEEDED
    assert all(fake.instances[i].installed for i in on_time)


async def test_gate_holds_on_time_after_a_failing_early_and_releases_on_command(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str
) -> None:
    fake = FakeSsm(catalogue={"ubuntu": list(UBUNTU)})
    fake.add("ubuntu", PatchGroup.EARLY, 3, fails=1)  # 2 of 3: 67% < 95%
    on_time = fake.add("ubuntu", PatchGroup.ON_TIME, 4)
    acct = account(queue_prefix)
    client = time_skipping_env.client
    async with workers(client, queue_prefix, fake):
        early = await run(client, window_input(queue_prefix, PatchGroup.EARLY, acct,
                                               window_config(PatchGroup.EARLY, overrides={"max_errors": "1"})))
        assert early.success_rate == pytest.approx(2 / 3)
        handle = await start(client, window_input(queue_prefix, PatchGroup.ON_TIME, acct))
        with time_skipping_env.auto_time_skipping_disabled():
            status = await _until(lambda: handle.query(PatchWindowWorkflow.status), lambda s: s.outcome is WindowOutcome.HELD)
            assert isinstance(status, WindowStatus) and "below the 95% threshold" in (status.held_reason or "")
            described = await handle.describe()
            assert described.typed_search_attributes.get(sa.WINDOW_OUTCOME) == "held"
            assert "below the 95% threshold" in (await described.memo())["held_reason"]
            assert not fake.sends[1:]  # nothing sent while held
            await handle.signal("release", ReleaseRequest(by="alice", reason="known flaky host"))
        summary = await handle.result()
    assert summary.outcome is WindowOutcome.SUCCEEDED
    assert summary.released_by == "alice"
    assert all(fake.instances[i].installed for i in on_time)


async def test_a_held_ring_ends_held_at_the_cutoff_and_late_holds_after_it(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str
) -> None:
    fake = FakeSsm(catalogue={"ubuntu": list(UBUNTU)})
    fake.add("ubuntu", PatchGroup.EARLY, 2, fails=2)
    fake.add("ubuntu", PatchGroup.ON_TIME, 2)
    fake.add("ubuntu", PatchGroup.LATE, 2)
    acct = account(queue_prefix)
    client = time_skipping_env.client
    async with workers(client, queue_prefix, fake):
        await run(client, window_input(queue_prefix, PatchGroup.EARLY, acct))
        held = await run(client, window_input(queue_prefix, PatchGroup.ON_TIME, acct))
        late = await run(client, window_input(queue_prefix, PatchGroup.LATE, acct))
        # An operator pre-records a release of the failing early run: the next on-time proceeds.
        released = await run(client, window_input(queue_prefix, PatchGroup.ON_TIME, acct,
                                                  gate_releases=[fake.records[f"{acct.account_id}/early"].workflow_id]))
    assert held.outcome is WindowOutcome.HELD and "0.0%" in (held.held_reason or "")
    assert held.finished - held.started >= timedelta(minutes=180)
    assert late.outcome is WindowOutcome.HELD and "was held itself" in (late.held_reason or "")
    assert released.outcome is WindowOutcome.SUCCEEDED
    assert any("released by an operator" in note for note in released.notes)


async def _until(probe, done, attempts: int = 100):
    for _ in range(attempts):
        try:
            value = await probe()
            if done(value):
                return value
        except Exception:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")

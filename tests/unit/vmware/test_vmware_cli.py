"""``fleetpatch vcenter issue-tokens`` against a real vcsim, configured only through settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from clients.cli.vcenter_cmd import app
from clouds.vmware.token import verify_token
from clouds.vmware.vsphere import VsphereClient
from localclouds.vcsim import PASSWORD, USERNAME
from localclouds.vcsim.keys import ensure_keys
from localclouds.vcsim.process import VcsimProcess

pytestmark = pytest.mark.vcsim
VC = "vc-cli"


def _configure(monkeypatch: pytest.MonkeyPatch, vcsim: VcsimProcess, key: Path, **extra: object) -> None:
    entry = {"url": vcsim.url, "username": USERNAME, "password": PASSWORD,
             "signing_key_file": str(key), **extra}
    monkeypatch.setenv("FLEETPATCH_VMWARE__VCENTERS", json.dumps({VC: entry}))


def test_issue_tokens(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, vcsim: VcsimProcess,
                      client: VsphereClient) -> None:
    signing, public = ensure_keys(tmp_path)
    _configure(monkeypatch, vcsim, signing)
    vm = client.find_vm_by_name("DC0_C0_RP0_VM1")
    client.set_custom_attribute(vm, "rackspace-addon-patching", "true")

    result = CliRunner().invoke(app, ["issue-tokens", "--vcenter", VC, "--customer", "acme"])

    assert result.exit_code == 0, result.output
    assert "DC0_C0_RP0_VM1" in result.output and "DC0_H0_VM0" not in result.output
    token = client.read_token(vm)
    assert token is not None and token.split(".")[2] not in result.output  # never printed
    verified = verify_token(token, public_keys=[public.read_text()], vcenter_id=VC, now=datetime.now(UTC))
    assert verified.customer == "acme"
    assert client.read_token(client.find_vm_by_name("DC0_H0_VM0")) is None


def test_customer_defaults_to_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          vcsim: VcsimProcess, client: VsphereClient) -> None:
    signing, public = ensure_keys(tmp_path)
    _configure(monkeypatch, vcsim, signing, customer="globex")
    vm = client.find_vm_by_name("DC0_H0_VM0")
    client.set_custom_attribute(vm, "rackspace-addon-patching", "true")
    result = CliRunner().invoke(app, ["issue-tokens", "--vcenter", VC])
    assert result.exit_code == 0, result.output
    token = client.read_token(vm)
    assert verify_token(token, public_keys=[public.read_text()], vcenter_id=VC,
                        now=datetime.now(UTC)).customer == "globex"


def test_refusals(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, vcsim: VcsimProcess) -> None:
    signing, _ = ensure_keys(tmp_path)
    _configure(monkeypatch, vcsim, signing)
    runner = CliRunner()
    from tests.conftest import free_port  # no Temporal there: the CLI cannot run it on a worker either
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("FLEETPATCH_STATE_DIR", str(tmp_path / "state"))
    unknown = runner.invoke(app, ["issue-tokens", "--vcenter", "nope", "--customer", "acme"])
    assert unknown.exit_code == 2 and "unknown vCenter" in unknown.output
    no_customer = runner.invoke(app, ["issue-tokens", "--vcenter", VC])
    assert no_customer.exit_code == 2
    _configure(monkeypatch, vcsim, signing, password="wrong")
    refused = runner.invoke(app, ["issue-tokens", "--vcenter", VC, "--customer", "acme"])
    assert refused.exit_code == 1 and "ConfigurationInvalid" in refused.output


def test_issue_tokens_in_one_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, vcsim: VcsimProcess,
                                    client: VsphereClient) -> None:
    signing, _ = ensure_keys(tmp_path)
    _configure(monkeypatch, vcsim, signing)
    for name in ("DC0_H0_VM0", "DC0_H0_VM1"):
        client.set_custom_attribute(client.find_vm_by_name(name), "rackspace-addon-patching", "true")
    datacenter = client.content.rootFolder.childEntity[0]
    folder = datacenter.vmFolder.CreateFolder("acme")
    client._wait(folder.MoveIntoFolder_Task([client.find_vm_by_name("DC0_H0_VM1")]), "moving a VM")

    result = CliRunner().invoke(app, ["issue-tokens", "--vcenter", VC, "--customer", "acme", "--folder", "DC0/vm/acme"])

    assert result.exit_code == 0, result.output
    assert client.read_token(client.find_vm_by_name("DC0_H0_VM1")) is not None
    assert client.read_token(client.find_vm_by_name("DC0_H0_VM0")) is None
    missing = CliRunner().invoke(app, ["issue-tokens", "--vcenter", VC, "--customer", "acme", "--folder", "DC0/vm/nope"])
    assert missing.exit_code == 1 and "ConfigurationInvalid" in missing.output


async def test_issue_tokens_runs_on_the_vmware_worker_when_the_cli_has_no_vcenter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, vcsim: VcsimProcess, client: VsphereClient,
    dev_env: Any, queue_prefix: str,
) -> None:
    """The local default gives the vCenter's connection and key to the vmware worker only: the CLI
    (no FLEETPATCH_VMWARE__VCENTERS) runs the link's token job there, through Temporal, with the
    customer and folder of the link's schedule, and every labelled VM gets a fresh token."""
    import asyncio
    import tempfile
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.worker import Worker

    from activities.vmware import VmwareActivities
    from config.settings import VmwareSettings
    from contracts import taskqueues
    from contracts.providers import WorkerRole
    from contracts.vcenter_tokens import VcenterTokensInput
    from scheduling.reconcile import orchestrator_queue
    from scheduling.vcenter_tokens import ensure_schedule
    from workflows.vcenter_tokens import VcenterTokensWorkflow

    signing, public = ensure_keys(tmp_path)
    vc = f"vc-{uuid.uuid4().hex[:8]}"
    link = f"{vc}:acme"
    worker_settings = VmwareSettings.model_validate({"vcenters": {vc: {
        "url": vcsim.url, "username": USERNAME, "password": PASSWORD, "signing_key_file": str(signing)}}})
    for name in ("DC0_H0_VM0", "DC0_H0_VM1"):
        client.set_custom_attribute(client.find_vm_by_name(name), "rackspace-addon-patching", "true")
    folder = client.content.rootFolder.childEntity[0].vmFolder.CreateFolder("acme")
    client._wait(folder.MoveIntoFolder_Task([client.find_vm_by_name("DC0_H0_VM1")]), "moving a VM")
    inside = client.find_vm_by_name("DC0_H0_VM1")
    client.write_token(inside, "an-old-token")
    await ensure_schedule(dev_env.client, VcenterTokensInput(
        vcenter_id=link, customer="acme", public_keys=[public.read_text()], queue_prefix=queue_prefix,
        scope="DC0/vm/acme"), timedelta(hours=1))

    monkeypatch.delenv("FLEETPATCH_VMWARE__VCENTERS", raising=False)
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", dev_env.client.namespace)
    monkeypatch.setenv("FLEETPATCH_STATE_DIR", tempfile.mkdtemp(prefix="fleetpatch-cli-"))

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, ["issue-tokens", "--vcenter", *args])

    with ThreadPoolExecutor(4) as pool:
        async with (
            Worker(dev_env.client, task_queue=orchestrator_queue(queue_prefix), workflows=[VcenterTokensWorkflow]),
            Worker(dev_env.client, task_queue=taskqueues.for_role(WorkerRole.VMWARE, queue_prefix),
                   activities=VmwareActivities(worker_settings).all(), activity_executor=pool),
        ):
            result = await asyncio.to_thread(cli, link)
            assert result.exit_code == 0, result.output
            assert "DC0_H0_VM1" in result.output and "DC0_H0_VM0" not in result.output
            first = client.read_token(inside)
            assert first not in (None, "an-old-token") and first.split(".")[2] not in result.output
            verified = verify_token(first, public_keys=[public.read_text()], vcenter_id=vc, link=link, now=datetime.now(UTC))
            assert (verified.customer, verified.link) == ("acme", link)
            assert client.read_token(client.find_vm_by_name("DC0_H0_VM0")) is None  # outside the folder

            # A manual run renews a still-valid token too (what an operator asks for).
            await asyncio.sleep(1.1)
            again = await asyncio.to_thread(cli, link)
            assert again.exit_code == 0, again.output
            assert client.read_token(inside) != first

            other = await asyncio.to_thread(cli, link, "--customer", "globex")
            assert other.exit_code == 2 and "not link" in other.output
            unknown = await asyncio.to_thread(cli, f"{vc}:nobody", "--folder", "DC0/vm/x")
            assert unknown.exit_code == 2 and "unknown vCenter link" in unknown.output

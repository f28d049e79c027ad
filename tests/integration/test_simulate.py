"""``fleetpatch up`` in a temporary directory, then ``fleetpatch simulate --vms 8 --customers 2``:
all eight VMs enroll over the four clouds, and local.json lists them under ``vms``; then a patch
window runs in a vended account through the least-privilege role."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import boto3
import httpx
import pytest

from tests.conftest import free_port
from tests.integration.test_up import _env, _start, _stop, _wait_healthy

pytestmark = pytest.mark.integration

SIMULATE = [sys.executable, "-c",
            "import typer; from clients.cli.simulate_cmd import simulate; typer.run(simulate)"]


async def test_simulate_enrolls_eight_vms_over_four_clouds(tmp_path: Path) -> None:
    state = tmp_path / ".fleetpatch"
    env = _env(state)
    env["FLEETPATCH_LOCAL__FLEET_PORT"] = str(free_port())
    env["FLEETPATCH_LOCAL__VCENTER_GUEST_PORT"] = str(free_port())
    env["FLEETPATCH_PATCHING__POLL_INTERVAL"] = "2s"  # the window below polls its commands quickly
    proc = _start(state, env)
    try:
        doc = await _wait_healthy(state / "local.json", proc)
        assert "fleet" in doc, "fleetpatch up must start the fleet host"
        if httpx.get(f"{doc['api']}/v1/startup/gcp", timeout=10).status_code != 200:
            pytest.skip("the API does not serve startup scripts yet")
        result = subprocess.run([*SIMULATE, "--vms", "8", "--customers", "2", "--timeout", "600"],
                                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        vms = httpx.get(f"{doc['fleet']['url']}/vms").json()["vms"]
        assert len(vms) == 8 and {v["state"] for v in vms} == {"agent online"}
        assert {v["provider"] for v in vms} == {"gcp", "azure", "aws", "vmware"}
        assert {v["customer"] for v in vms} == {"acme", "globex"}
        listed = json.loads((state / "fleet" / "vms.json").read_text())
        assert {v["name"] for v in listed} == {v["name"] for v in vms}
        # Some booted without an SSM agent: their script installed the local AWS's stand-in
        # package (its signature verified against the local AWS's key, which the local default
        # configures instead of AWS's) and they enrolled like the rest.
        from localclouds.aws.agent_packages import STANDIN_VERSION
        from localclouds.aws.agent_signing import ensure_key
        from localclouds.fleet.customers import plan

        local_key = ensure_key(state)[0].fingerprint
        assert f"AGENT_FINGERPRINTS='{local_key}'" in httpx.get(f"{doc['api']}/v1/startup/gcp", timeout=10).text
        agentless = {p.name for p in plan(0, 8, 2) if not p.agent_installed}
        assert agentless
        for vm in (v for v in vms if v["name"] in agentless):
            boot_log = (state / "fleet" / "vms" / vm["name"] / "boot.log").read_text()
            assert f"(signature by key {local_key} verified)" in boot_log, boot_log
            assert vm["agent_version"] == STANDIN_VERSION
        # The installed agent's version reaches the estate store (ComplianceSync).
        admin = {"Authorization": f"Bearer {(state / 'secrets' / 'admin-token').read_text().strip()}"}
        synced = httpx.post(f"{doc['api']}/v1/admin/compliance/sync", params={"wait": "true"}, headers=admin, timeout=300)
        assert synced.status_code == 200, synced.text
        installed = next(v for v in vms if v["name"] in agentless)
        shown = httpx.get(f"{doc['api']}/v1/instances/{installed['managed_instance_id']}", headers=admin, timeout=30)
        assert shown.status_code == 200 and shown.json()["agent_version"] == STANDIN_VERSION, shown.text

        # Every hybrid VM is a managed instance online in some systems account; the EC2 VMs are
        # EC2 nodes in their customers' own accounts.
        aws = doc["aws"]
        for vm in vms:
            if vm["provider"] != "aws":
                assert vm["managed_instance_id"].startswith("mi-")
                continue
            sts = boto3.client("sts", endpoint_url=aws, region_name="us-east-1",
                               aws_access_key_id="AKIATESTINTEGRATION0", aws_secret_access_key="x")
            creds = sts.assume_role(RoleArn=f"arn:aws:iam::{vm['cloud_account']}:role/Check",
                                    RoleSessionName="check")["Credentials"]
            ssm = boto3.client("ssm", endpoint_url=aws, region_name="us-east-1",
                               aws_access_key_id=creds["AccessKeyId"],
                               aws_secret_access_key=creds["SecretAccessKey"],
                               aws_session_token=creds["SessionToken"])
            (node,) = ssm.describe_instance_information(
                Filters=[{"Key": "InstanceIds", "Values": [vm["instance_id"]]}])["InstanceInformationList"]
            assert node["PingStatus"] == "Online"

        await _a_window_runs_through_the_systems_role(doc, state, vms)
    finally:
        _stop(proc)


async def _a_window_runs_through_the_systems_role(doc: dict, state: Path, vms: list[dict]) -> None:
    """The vended account holds FleetpatchSystemsAccess, and a patch window opened now patches the
    VM through it (the local AWS enforces that role's policy in vended accounts)."""
    from localclouds.aws import ACCESS_KEY_ID, SECRET_ACCESS_KEY

    vm = next(v for v in vms if v["provider"] == "gcp")
    management = boto3.Session(aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)
    org = management.client("organizations", endpoint_url=doc["aws"], region_name="us-east-1")
    account = next(
        a["Id"] for a in org.list_accounts()["Accounts"]
        if {t["Key"]: t["Value"] for t in org.list_tags_for_resource(ResourceId=a["Id"])["Tags"]}.get(
            "fleetpatch:cloud-account") == vm["cloud_account"]
    )
    sts = management.client("sts", endpoint_url=doc["aws"], region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                            RoleSessionName="check")["Credentials"]
    iam = boto3.client("iam", endpoint_url=doc["aws"], region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                       aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    assert iam.get_role(RoleName="FleetpatchSystemsAccess")["Role"]["RoleName"] == "FleetpatchSystemsAccess"

    group = vm["patch_group"] or "on-time"
    token = (state / "secrets" / "admin-token").read_text().strip()
    async with httpx.AsyncClient(base_url=doc["api"], timeout=600, headers={"Authorization": f"Bearer {token}"}) as api:
        ran = await api.post(f"/v1/admin/windows/{account}/{group}/trigger", json={"wait": True})
        polled = ran.status_code == 202
        # Past the admin budget the API answers 202 + Location: poll the operation to its end.
        while ran.status_code == 202 and ran.headers.get("location", "").startswith("/v1/admin/operations/"):
            await asyncio.sleep(min(10.0, float(ran.headers.get("retry-after", "2") or 2)))
            ran = await api.get(ran.headers["location"])
    assert ran.status_code == 200, ran.text
    body = ran.json()
    # Within the budget: {"workflow_id", "summary"}; polled: {"state": "completed", "result": <the summary>}.
    summary = body["result"] if polled else body["summary"]
    assert summary["outcome"] == "succeeded", summary

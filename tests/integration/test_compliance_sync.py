"""The local default end to end: ``fleetpatch up``, four simulated VMs over the four clouds, a
patch scan, then an on-demand ComplianceSync: the estate store's numbers equal what the local SSM
reports for the same instances (counts, compliance, missing patches, software inventory)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from config import temporal
from config.settings import ComplianceSettings
from contracts.estate import compliance_of
from estate import db, reads
from estate.results import Scope
from scheduling.compliance import start_sync, sync_status
from tests.integration.test_simulate import SIMULATE
from tests.integration.test_up import _env, _start, _stop, _wait_healthy

pytestmark = pytest.mark.integration


def _ssm(endpoint: str, account_id: str) -> Any:
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="AKIATESTINTEGRATION0", aws_secret_access_key="x")
    # The administrator role Organizations made: the local AWS enforces IAM in vended accounts.
    role = f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole"
    creds = sts.assume_role(RoleArn=role, RoleSessionName="check")["Credentials"]
    return boto3.client("ssm", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def _scan(ssm: Any) -> None:
    """An operator's scan of every instance of the account; waits for every invocation to end."""
    ids = [i["InstanceId"] for i in ssm.describe_instance_information()["InstanceInformationList"]]
    command = ssm.send_command(InstanceIds=ids, DocumentName="AWS-RunPatchBaseline",
                               Parameters={"Operation": ["Scan"]})["Command"]["CommandId"]
    deadline = time.monotonic() + 180
    while ssm.list_commands(CommandId=command)["Commands"][0]["Status"] in ("Pending", "InProgress"):
        assert time.monotonic() < deadline, "the scan did not finish"
        time.sleep(1)


def _ssm_view(ssm: Any) -> dict[str, Any]:
    infos = ssm.describe_instance_information()["InstanceInformationList"]
    ids = [i["InstanceId"] for i in infos]
    states = {s["InstanceId"]: s for s in ssm.describe_instance_patch_states(InstanceIds=ids)["InstancePatchStates"]}
    software = {i: len(ssm.list_inventory_entries(InstanceId=i, TypeName="AWS:Application", MaxResults=50)["Entries"])
                for i in ids}
    compliance = [compliance_of(states[i]["Operation"] if i in states else None,
                                states.get(i, {}).get("MissingCount", 0), states.get(i, {}).get("FailedCount", 0))
                  for i in ids]
    return {"ids": set(ids), "missing": sum(s["MissingCount"] for s in states.values()),
            "compliance": sorted(c.value for c in compliance), "software": software}


async def test_sync_makes_the_store_equal_local_ssm(tmp_path: Path) -> None:
    state = tmp_path / ".fleetpatch"
    env = _env(state)
    env["FLEETPATCH_COMPLIANCE__SCHEDULE"] = "false"  # this test starts the only sync
    proc = _start(state, env)
    try:
        doc = await _wait_healthy(state / "local.json", proc)
        if httpx.get(f"{doc['api']}/v1/startup/gcp", timeout=10).status_code != 200:
            pytest.skip("the API does not serve startup scripts yet")
        result = subprocess.run([*SIMULATE, "--vms", "4", "--customers", "1", "--timeout", "600"],
                                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        vms = httpx.get(f"{doc['fleet']['url']}/vms").json()["vms"]
        assert {v["state"] for v in vms} == {"agent online"}

        # as the CLI connects: local.json's address and the local default's payload codec
        client = await temporal.connect(state / "local.json")
        listing = await start_sync(client, ComplianceSettings(), request="listing")
        accounts = [a.systems_account for a in (await listing.result()).accounts]
        assert len(accounts) == 4  # three vended (GCP, Azure, vCenter) and the customer's own AWS account
        views = {}
        for account in accounts:
            ssm = _ssm(doc["aws"], account)
            _scan(ssm)
            views[account] = _ssm_view(ssm)
        assert sum(len(v["ids"]) for v in views.values()) == 4

        handle = await start_sync(client, ComplianceSettings(), request="after-scan")
        synced = await handle.result()
        assert all(a.ok for a in synced.accounts), synced.accounts
        progress = await sync_status(client, handle.id)
        assert (progress.phase, progress.accounts_done, progress.accounts_total) == ("done", 4, 4)

        engine = db.make_engine(f"sqlite:///{state / 'estate.db'}")
        try:
            with db.sessions(engine)() as session:
                totals = reads.compliance(session, Scope.everything(), []).totals
                assert totals.instances == 4 and totals.unknown == 0
                assert totals.missing == sum(v["missing"] for v in views.values())
                expected = sorted(c for v in views.values() for c in v["compliance"])
                assert totals.compliant == expected.count("compliant")
                assert totals.non_compliant == expected.count("non_compliant")
                for view in views.values():
                    for instance_id, count in view["software"].items():
                        detail = reads.instance_detail(session, Scope.everything(), instance_id)
                        assert detail is not None and len(detail.inventory) == count > 0
                        assert detail.instance.customer == "acme"
        finally:
            engine.dispose()
    finally:
        _stop(proc)

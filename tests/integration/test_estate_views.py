"""Issue 10's "done when", lightly: ``fleetpatch up``, nine simulated VMs (the fewest that reach
three customers), one triggered window and ``fleetpatch compliance sync --wait``; then

- ``GET /v1/compliance`` counts the same instances, compliant / non-compliant / unknown, missing and
  failed as the local SSM reports for them (read with boto3, account by account);
- the dashboard shows those numbers (Debian's chromium);
- a customer token sees its customer only.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import boto3
import httpx
import pytest
from playwright.async_api import async_playwright

from tests.integration.test_up import FLEETPATCH, _env, _start, _stop, _wait_healthy
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, screenshot_path

pytestmark = pytest.mark.integration

SIMULATE = [sys.executable, "-c",
            "import typer; from clients.cli.simulate_cmd import simulate; typer.run(simulate)"]
COUNTERS = ("instances", "compliant", "non_compliant", "unknown", "missing", "failed")


def _run(state: Path, env: dict[str, str], *argv: str, timeout: float = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), env={**env, "COLUMNS": "200"}, cwd=state.parent, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


def _ssm(aws: str, account: str):  # noqa: ANN202
    sts = boto3.client("sts", endpoint_url=aws, region_name="us-east-1",
                       aws_access_key_id="AKIATESTINTEGRATION0", aws_secret_access_key="x")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                            RoleSessionName="estate-check")["Credentials"]
    return boto3.client("ssm", endpoint_url=aws, region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


def ssm_counts(aws: str, accounts: set[str]) -> tuple[Counter, set[str]]:
    """What the local SSM reports, counted with the compliance rule, over ``accounts``."""
    counts: Counter = Counter()
    ids: set[str] = set()
    for account in sorted(accounts):
        ssm = _ssm(aws, account)
        nodes = [n["InstanceId"] for page in ssm.get_paginator("describe_instance_information").paginate()
                 for n in page["InstanceInformationList"]]
        states = {}
        for i in range(0, len(nodes), 50):
            for s in ssm.describe_instance_patch_states(InstanceIds=nodes[i:i + 50])["InstancePatchStates"]:
                states[s["InstanceId"]] = s
        for node in nodes:
            ids.add(node)
            counts["instances"] += 1
            state = states.get(node)
            if state is None:
                counts["unknown"] += 1
                continue
            missing, failed = state.get("MissingCount", 0), state.get("FailedCount", 0)
            counts["missing"] += missing
            counts["failed"] += failed
            counts["non_compliant" if missing + failed else "compliant"] += 1
    return counts, ids


async def dashboard_totals(base: str, token: str, shot: str) -> dict[str, int]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        await page.goto(f"{base}/dashboard/signin")
        await page.fill("#token", token)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/dashboard")
        totals = {m: int(await page.locator(f'[data-metric="{m}"]').inner_text()) for m in COUNTERS}
        await page.screenshot(path=str(screenshot_path(shot)), full_page=True)
        await browser.close()
    return totals


async def test_compliance_equals_local_ssm_and_customers_see_only_themselves(tmp_path: Path) -> None:
    state = tmp_path / ".fleetpatch"
    env = _env(state)
    env["FLEETPATCH_PATCHING__POLL_INTERVAL"] = "2"
    env["FLEETPATCH_COMPLIANCE__SCHEDULE"] = "false"  # only the syncs this test asks for
    proc = _start(state, env)
    try:
        doc = await _wait_healthy(state / "local.json", proc)
        admin_token = Path(doc["admin_token_file"]).read_text().strip()
        admin = {"Authorization": f"Bearer {admin_token}"}
        _run(state, env, *SIMULATE, "--vms", "9", "--customers", "3", "--timeout", "600")
        _run(state, env, FLEETPATCH, "compliance", "sync", "--wait")
        api = httpx.Client(base_url=doc["api"], timeout=60)
        rows = api.get("/v1/instances", params={"limit": 1000}, headers=admin).json()["instances"]
        assert len(rows) == 9 and len({r["customer"] for r in rows}) == 3

        first = next(r for r in rows if r["patch_group"] == "early")  # early is never held by a gate
        _run(state, env, FLEETPATCH, "windows", "trigger", "--account", first["systems_account"],
             "--group", first["patch_group"], "--wait")
        _run(state, env, FLEETPATCH, "compliance", "sync", "--wait")

        report = api.get("/v1/compliance", params={"group_by": "customer"}, headers=admin).json()
        rows = api.get("/v1/instances", params={"limit": 1000}, headers=admin).json()["instances"]
        counted, ids = ssm_counts(doc["aws"], {r["systems_account"] for r in rows})
        assert {r["managed_instance_id"] for r in rows} == ids
        assert {k: report["totals"][k] for k in COUNTERS} == {k: counted[k] for k in COUNTERS}
        assert report["totals"]["compliant"] + report["totals"]["non_compliant"] >= 1  # the window scanned some

        assert await dashboard_totals(doc["api"], admin_token, "integration-admin") == {k: counted[k] for k in COUNTERS}

        customer = first["customer"]
        token = _run(state, env, FLEETPATCH, "tokens", "issue", "--customer", customer).stdout.strip()
        mine = api.get("/v1/instances", params={"limit": 1000}, headers={"Authorization": f"Bearer {token}"}).json()
        assert mine["instances"] and {r["customer"] for r in mine["instances"]} == {customer}
        others = [r["customer"] for r in rows if r["customer"] != customer]
        leaked = api.get("/v1/instances", params={"customer": others[0]}, headers={"Authorization": f"Bearer {token}"})
        assert leaked.json()["instances"] == []
        seen = await dashboard_totals(doc["api"], token, "integration-customer")
        assert seen["instances"] == sum(1 for r in rows if r["customer"] == customer)
        assert api.get("/v1/admin/tokens", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    finally:
        _stop(proc)

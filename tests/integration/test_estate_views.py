"""Issue 10's "done when", lightly: ``fleetpatch up``, nine simulated VMs (the fewest that reach
three customers and all four clouds), one triggered window and ``fleetpatch compliance sync --wait``;
then

- ``GET /v1/compliance`` counts the same instances, compliant / non-compliant / unknown, missing and
  failed as the local SSM reports for them (read with boto3, account by account), in total and per
  customer;
- the dashboard shows those numbers (Debian's chromium);
- a customer token sees its customer only (instances, compliance, dashboard; admin routes 403);
- every instance's audit chain starts with the identity evidence its real enrollment recorded
  (the key that signed, per cloud, a digest, when) and names that enrollment's run;
- the README's Temporal UI queries are valid on the stack's Temporal and find what they say.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import boto3
import httpx
import pytest
from playwright.async_api import async_playwright

from tests.integration.test_up import FLEETPATCH, _client, _env, _start, _stop, _wait_healthy
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, screenshot_path

pytestmark = pytest.mark.integration

SIMULATE = [sys.executable, "-c",
            "import typer; from clients.cli.simulate_cmd import simulate; typer.run(simulate)"]
COUNTERS = ("instances", "compliant", "non_compliant", "unknown", "missing", "failed")
README = Path(__file__).resolve().parents[2] / "README.md"
#: What names the signing key of each cloud's identity (contracts.evidence.KeyKind).
KEY_KINDS = {"gcp": "kid", "azure": "signer_certificate_sha256", "aws": "signer_certificate_sha256",
             "vmware": "link_key_sha256"}


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
        found, found_ids = _account_counts(aws, account)
        counts.update(found)
        ids |= found_ids
    return counts, ids


def _account_counts(aws: str, account: str) -> tuple[Counter, set[str]]:
    """One systems account's managed instances, counted with the compliance rule."""
    ssm = _ssm(aws, account)
    nodes = [n["InstanceId"] for page in ssm.get_paginator("describe_instance_information").paginate()
             for n in page["InstanceInformationList"]]
    states = {}
    for i in range(0, len(nodes), 50):
        for s in ssm.describe_instance_patch_states(InstanceIds=nodes[i:i + 50])["InstancePatchStates"]:
            states[s["InstanceId"]] = s
    counts: Counter = Counter()
    for node in nodes:
        counts["instances"] += 1
        state = states.get(node)
        if state is None:
            counts["unknown"] += 1
            continue
        missing, failed = state.get("MissingCount", 0), state.get("FailedCount", 0)
        counts["missing"] += missing
        counts["failed"] += failed
        counts["non_compliant" if missing + failed else "compliant"] += 1
    return counts, set(nodes)


def ssm_counts_by_customer(aws: str, rows: list[dict]) -> dict[str, Counter]:
    """The local SSM's counts per customer (each systems account serves one customer)."""
    owners = {r["systems_account"]: r["customer"] for r in rows}
    by_customer: dict[str, Counter] = {}
    for account, customer in sorted(owners.items()):
        by_customer.setdefault(customer, Counter()).update(_account_counts(aws, account)[0])
    return by_customer


async def dashboard_totals(base: str, token: str, shot: str, instance: str | None = None) -> dict[str, int | str]:
    """The overview's totals; with ``instance``, also the identity evidence its page shows."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        await page.goto(f"{base}/dashboard/signin")
        await page.fill("#token", token)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/dashboard")
        totals: dict[str, int | str] = {m: int(await page.locator(f'[data-metric="{m}"]').inner_text()) for m in COUNTERS}
        await page.screenshot(path=str(screenshot_path(shot)), full_page=True)
        if instance is not None:
            await page.goto(f"{base}/dashboard/instances/{instance}")
            for field in ("evidence-key", "evidence-digest"):
                totals[field] = (await page.locator(f'[data-field="{field}"]').inner_text()).strip()
            await page.screenshot(path=str(screenshot_path(f"{shot}-instance")), full_page=True)
        await browser.close()
    return totals


def check_evidence(api: httpx.Client, admin: dict[str, str], rows: list[dict]) -> None:
    """Each instance's audit chain: the identity evidence its own enrollment recorded."""
    for row in rows:
        detail = api.get(f"/v1/instances/{row['managed_instance_id']}", headers=admin).json()
        evidence, enrollment = detail["evidence"], detail["enrollment"]
        assert evidence["provider"] == row["provider"], detail
        assert evidence["key_kind"] == KEY_KINDS[row["provider"]] and evidence["key_id"], detail
        assert re.fullmatch(r"[0-9a-f]{64}", evidence["digest"]) and evidence["verified_at"], detail
        assert enrollment["workflow_id"] == f"enroll/{row['provider']}/{row['instance_key']}", detail
        assert enrollment["run_id"] and enrollment["temporal_ui"].endswith(f"/{enrollment['run_id']}/history")
    assert {r["provider"] for r in rows} == set(KEY_KINDS)  # every cloud's kind of key was seen
    digests = [api.get(f"/v1/instances/{r['managed_instance_id']}", headers=admin).json()["evidence"]["digest"]
               for r in rows]
    assert len(set(digests)) == len(rows)  # one identity per VM


def readme_queries() -> list[str]:
    """The queries of the README's "Useful Temporal UI queries" table."""
    text = README.read_text()
    section = text[text.index("**Useful Temporal UI queries**"):]
    section = section[:section.index("\n\n", section.index("| query"))]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


async def check_readme_queries(doc: dict, rows: list[dict]) -> None:
    """Every README query is valid on this Temporal; the enrollment ones find the enrolled VMs."""
    client = await _client(doc)
    queries = readme_queries()
    assert len(queries) >= 6
    found: dict[str, list] = {}
    for query in queries:
        found[query] = [w async for w in client.list_workflows(query)]  # an invalid query raises
    acme = sum(1 for r in rows if r["customer"] == "acme")
    enrolled = 'Customer = "acme" AND EnrollmentState = "enrolled"'
    for _ in range(20):  # visibility catches up with the last enrollments
        if len(found[enrolled]) == acme:
            break
        await asyncio.sleep(0.5)
        found[enrolled] = [w async for w in client.list_workflows(enrolled)]
    assert acme and len(found[enrolled]) == acme
    assert all(w.workflow_type == "EnrollVm" for w in found[enrolled])
    key = rows[0]["instance_key"]
    assert [w.id async for w in client.list_workflows(f'InstanceKey = "{key}" AND EnrollmentState = "enrolled"')] == [
        f"enroll/{rows[0]['provider']}/{key}"]


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

        by_customer = {g["customer"]: {k: g[k] for k in COUNTERS} for g in report["groups"]}
        assert by_customer == {c: {k: n[k] for k in COUNTERS} for c, n in ssm_counts_by_customer(doc["aws"], rows).items()}

        check_evidence(api, admin, rows)
        evidence = api.get(f"/v1/instances/{first['managed_instance_id']}", headers=admin).json()["evidence"]
        shown_totals = await dashboard_totals(doc["api"], admin_token, "integration-admin", first["managed_instance_id"])
        assert shown_totals == {**{k: counted[k] for k in COUNTERS},
                                "evidence-key": evidence["key_id"], "evidence-digest": evidence["digest"]}
        shown = _run(state, env, FLEETPATCH, "instances", "show", first["managed_instance_id"]).stdout
        assert re.search(r"identity +\w+ signature, .+ identity sha256 [0-9a-f]{64}", shown.replace("\n", " ")), shown
        await check_readme_queries(doc, rows)

        customer = first["customer"]
        token = _run(state, env, FLEETPATCH, "tokens", "issue", "--customer", customer).stdout.strip()
        mine = api.get("/v1/instances", params={"limit": 1000}, headers={"Authorization": f"Bearer {token}"}).json()
        assert mine["instances"] and {r["customer"] for r in mine["instances"]} == {customer}
        others = [r["customer"] for r in rows if r["customer"] != customer]
        leaked = api.get("/v1/instances", params={"customer": others[0]}, headers={"Authorization": f"Bearer {token}"})
        assert leaked.json()["instances"] == []
        scoped = api.get("/v1/compliance", params={"group_by": "customer"}, headers={"Authorization": f"Bearer {token}"})
        assert [g["customer"] for g in scoped.json()["groups"]] == [customer]
        assert {k: scoped.json()["totals"][k] for k in COUNTERS} == by_customer[customer]
        seen = await dashboard_totals(doc["api"], token, "integration-customer")
        assert seen == by_customer[customer]
        assert api.get("/v1/admin/tokens", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    finally:
        _stop(proc)

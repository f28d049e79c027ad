"""``fleetpatch windows`` for a customer with two systems accounts (a real Temporal dev server,
the real PatchWindow workflow, the fake fleet): ``trigger --wait --json`` reports the customer's
train; ids are whole on an 80-column terminal; ``release --customer`` covers every account."""

from __future__ import annotations

import tempfile
from pathlib import Path

import asyncio
import json
import uuid

import httpx
from pydantic import SecretStr
from rich.console import Console
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from typer.testing import CliRunner

import scheduling as schedules
from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from clients.cli import common
from clients.cli.window_output import summary_json
from clients.cli.windows_cmd import app as windows_app
from config.settings import ApiSettings, Settings
from contracts import taskqueues
from contracts.enrollment import AccountRef, LinkCommand, LinkCommandResult, TenantLink
from contracts.names import WorkflowName
from contracts.patching import EnsureWindowsInput, InstanceResult, InstanceStatus, PatchRef, WindowOutcome, WindowSummary
from contracts.providers import PatchGroup, Provider, WorkerRole
from tests.unit.patching.fake_ssm import FakeSsm
from tests.unit.patching.harness import workers

TOKEN = "admin-" + uuid.uuid4().hex
FAST = schedules.RunShape(poll_interval_seconds=1, poll_hold_seconds=0)


async def _cli(monkeypatch, env: WorkflowEnvironment, *args: str, columns: int = 250):
    monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", env.client.namespace)
    # Never the developer's own .fleetpatch/local.json (its codec key would not match this server's workers).
    monkeypatch.setenv("FLEETPATCH_STATE_DIR", str(Path(tempfile.mkdtemp(prefix="fleetpatch-cli-"))))
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setattr(common, "console", Console(width=columns))
    monkeypatch.setattr("clients.cli.windows_cmd.console", common.console)
    return await asyncio.to_thread(CliRunner().invoke, windows_app, list(args))


async def _customer(client, prefix: str, customer: str) -> list[AccountRef]:
    refs = []
    for _ in range(2):
        account_id = str(uuid.uuid4().int % 10**12).zfill(12)
        ref = AccountRef(account_id=account_id, role_arn=f"arn:aws:iam::{account_id}:role/R")
        await schedules.ensure_window_schedules(client, EnsureWindowsInput(
            account=ref, customer=customer, time_zone="Europe/Berlin", queue_prefix=prefix), FAST)
        refs.append(ref)
    return refs


async def test_trigger_wait_json_reports_the_customer_train_and_release_covers_every_account(
    dev_env: WorkflowEnvironment, queue_prefix: str, monkeypatch
) -> None:
    customer = f"initech-{uuid.uuid4().hex[:6]}"
    gcp, azure = await _customer(dev_env.client, queue_prefix, customer)
    fake = FakeSsm(catalogue={"ubuntu": [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")],
                              "windows": [PatchRef("KB5040437", "2024-07 Cumulative Update (KB5040437)")]}, run_polls=1)
    fake.customers[customer] = [(gcp, f"gcp/p ({gcp.account_id})"), (azure, f"azure/s ({azure.account_id})")]
    fake.add("ubuntu", PatchGroup.EARLY, 2, account=gcp.account_id)
    fake.add("windows", PatchGroup.EARLY, 1, account=azure.account_id)
    fake.add("ubuntu", PatchGroup.ON_TIME, 1, account=gcp.account_id)
    fake.add("windows", PatchGroup.ON_TIME, 1, account=gcp.account_id)
    fake.add("debian", PatchGroup.ON_TIME, 1, account=azure.account_id)  # no early debian anywhere
    async with workers(dev_env.client, queue_prefix, fake):
        early_runs = []
        for ref in (gcp, azure):
            early_runs.append(await schedules.trigger(dev_env.client, ref.account_id, PatchGroup.EARLY))
            await schedules.wait(dev_env.client, early_runs[-1])
        ran = await _cli(monkeypatch, dev_env, "trigger", "--account", gcp.account_id, "--group", "on-time",
                         "--wait", "--json")
        azure_on_time = await schedules.trigger(dev_env.client, azure.account_id, PatchGroup.ON_TIME)
        assert (await schedules.wait(dev_env.client, azure_on_time)).held_os == ["debian"]
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.output)
    # Every OS the customer's early runs installed, in either account, is in the train.
    assert summary["outcome"] == "succeeded" and summary["train"] == {"ubuntu": 1, "windows": 1}
    assert any(customer in note for note in summary["notes"])
    assert sorted(row["os"] for row in summary["instances"]) == ["ubuntu", "windows"]
    assert set(summary["instances"][0]) >= {"instance", "os", "status", "installed", "missing", "failed"}

    for _ in range(50):  # visibility is eventually consistent
        listed = await _cli(monkeypatch, dev_env, "list", "--customer", customer, columns=80)
        if all(listed.output.count(ref.account_id) >= 3 for ref in (gcp, azure)):
            break
        await asyncio.sleep(0.1)
    assert listed.exit_code == 0 and all(listed.output.count(ref.account_id) >= 3 for ref in (gcp, azure)), listed.output
    as_json = await _cli(monkeypatch, dev_env, "list", "--customer", customer, "--json")
    assert {(w["account_id"], w["group"]) for w in json.loads(as_json.output)["windows"]} == {
        (ref.account_id, g.value) for ref in (gcp, azure) for g in PatchGroup}
    shown = json.loads((await _cli(monkeypatch, dev_env, "show", "--account", azure.account_id, "--group", "early",
                                   "--json")).output)
    assert shown["recent"][0]["workflow_id"] == early_runs[1] and shown["customer"] == customer

    released = await _cli(monkeypatch, dev_env, "release", "--customer", customer, "--group", "late", "--reason", "ok")
    assert released.exit_code == 0, released.output
    for ref in (gcp, azure):  # each late window waives the on-time runs of the whole customer
        view = await schedules.show(dev_env.client, ref.account_id, PatchGroup.LATE)
        assert sorted(view.gate_releases) == sorted([summary["workflow_id"], azure_on_time])
    # The links list says which OS the customer's later rings hold for want of an early instance.
    links = await _links_via_api(dev_env, queue_prefix, [TenantLink(Provider.GCP, "initech-prod", customer),
                                                         TenantLink(Provider.AZURE, "sub", customer)])
    assert {link["held"] for link in links} == {"debian: held: no early instance of this OS"}
    both = await _cli(monkeypatch, dev_env, "release", "--group", "late")
    assert both.exit_code == 2 and "exactly one of --account and --customer" in both.output


async def test_admin_api_releases_a_ring_in_every_account_of_a_customer(
    dev_env: WorkflowEnvironment, queue_prefix: str
) -> None:
    """``POST /v1/admin/windows/customers/{customer}/{group}/release``: what ``windows release
    --customer`` does, validated (400 naming the field), 404 for a customer without the ring."""
    customer = f"umbrella {uuid.uuid4().hex[:6]}"  # a space: customers may have one
    refs = await _customer(dev_env.client, queue_prefix, customer)
    app = create_app(Settings(api=ApiSettings(admin_token=SecretStr(TOKEN))), TemporalGateway.for_client(dev_env.client))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    path = f"/v1/admin/windows/customers/{customer}/on-time/release"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        assert (await http.post(path, json={})).status_code == 401
        for _ in range(50):  # visibility is eventually consistent
            released = await http.post(path, json={"reason": "early ring checked by hand", "by": "ops"}, headers=auth)
            if released.status_code != 404:
                break
            await asyncio.sleep(0.2)
        assert released.status_code == 200, released.text
        # No earlier run yet in either account: each on-time window records the release ("none").
        assert released.json() == {"customer": customer, "group": "on-time", "accounts": [
            {"account_id": ref.account_id, "kind": "recorded", "workflow_id": "none"}
            for ref in sorted(refs, key=lambda r: r.account_id)]}
        for ref in refs:
            assert (await schedules.show(dev_env.client, ref.account_id, PatchGroup.ON_TIME)).gate_releases == ["none"]

        early = await http.post(f"/v1/admin/windows/customers/{customer}/early/release", headers=auth)
        assert early.status_code == 409 and "never gated" in early.json()["reason"]
        unknown = await http.post(f"/v1/admin/windows/customers/nobody-{uuid.uuid4().hex[:6]}/late/release", headers=auth)
        assert unknown.status_code == 404
        for bad, field in ((f"/v1/admin/windows/customers/-{customer}/late/release", "customer"),
                           (f"/v1/admin/windows/customers/{customer}/sometime/release", "group")):
            answer = await http.post(bad, headers=auth)
            assert answer.status_code == 400 and answer.json()["field"] == field, answer.text
        extra = await http.post(path, json={"earlier_run": "x"}, headers=auth)
        assert extra.status_code == 400 and extra.json()["field"] == "earlier_run", extra.text
        spec = (await http.get("/openapi.json")).json()["paths"]["/v1/admin/windows/customers/{customer}/{group}/release"]
        assert spec["post"]["operationId"] == "releaseCustomerWindows" and "404" in spec["post"]["responses"]


@workflow.defn(name=WorkflowName.LINK_ADMIN, sandboxed=False)
class _Links:
    links: list[TenantLink] = []

    @workflow.run
    async def run(self, command: LinkCommand) -> LinkCommandResult:
        return LinkCommandResult(links=list(_Links.links))


async def _links_via_api(env: WorkflowEnvironment, prefix: str, links: list[TenantLink]) -> list[dict]:
    _Links.links = links
    app = create_app(Settings(api=ApiSettings(admin_token=SecretStr(TOKEN)), task_queue_prefix=prefix + "api-"),
                     TemporalGateway.for_client(env.client))
    async with (Worker(env.client, task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, prefix + "api-"),
                       workflows=[_Links]),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api):
        for _ in range(50):  # visibility is eventually consistent
            answer = await api.get("/v1/admin/links", headers={"Authorization": f"Bearer {TOKEN}"})
            assert answer.status_code == 200, answer.text
            if all(link["held"] for link in answer.json()["links"]):
                break
            await asyncio.sleep(0.2)
    return answer.json()["links"]


def test_tables_keep_ids_whole_on_an_80_column_terminal(monkeypatch) -> None:
    console = Console(width=80, record=True)
    monkeypatch.setattr(common, "console", console)
    ids = ["085539764123", "patch-window/085539764123/on-time-2026-11-17T01:00:00Z"]
    common.print_table("patch windows", ["account", "group", "customer", "when", "state", "next run", "last run"],
                       [[ids[0], "on-time", "a-customer-with-a-long-name", "Tue 02:00 on days 15-21 (Europe/Berlin)",
                         "active", "2026-12-15 02:00 CET", ids[1]]], whole=("account",))
    text = console.export_text()
    assert ids[0] in text and "…" not in text


def test_summary_json_names_the_fields_scripts_read() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 17, 1, tzinfo=UTC)
    summary = WindowSummary("085539764123", PatchGroup.ON_TIME, WindowOutcome.SUCCEEDED, now, now, train={"rhel": 3},
                            notes=["gate: ok"], held_os=["debian"],
                            instances=[InstanceResult("mi-0123456789abcdef0", "rhel", InstanceStatus.SUCCEEDED, installed=3)])
    data = json.loads(json.dumps(summary_json(summary)))
    assert data["outcome"] == "succeeded" and data["train"] == {"rhel": 3} and data["notes"] == ["gate: ok"]
    assert data["held_os"] == ["debian"] and data["group"] == "on-time" and data["started"] == now.isoformat()
    assert data["instances"] == [{"instance": "mi-0123456789abcdef0", "os": "rhel", "status": "succeeded", "installed": 3,
                                  "missing": 0, "failed": 0, "pending_reboot": 0, "reason": ""}]


def test_no_column_is_squeezed_away_when_whole_ids_fill_the_terminal(monkeypatch) -> None:
    """Two whole ids wider than the terminal with the rest: every column keeps its values (the
    lines run on), and a date folds at its words, never inside them."""
    console = Console(width=80, record=True)
    monkeypatch.setattr(common, "console", console)
    row = ["085539764123", "on-time", "acme", "Tue 02:00 on days 15-21 (UTC)", "active", "2026-12-15 02:00 UTC",
           "patch-window/085539764123/on-time-2026-11-17T01:00:00Z"]
    common.print_table("patch windows", ["account", "group", "customer", "when", "state", "next run", "last run"],
                       [row], whole=("account", "last run"))
    text = console.export_text()
    for value in ("085539764123", "on-time", "acme", "active", "2026-12-15", row[-1]):
        assert value in text, text
    assert "…" not in text and console.width == 80

"""``fleetpatch windows`` and ``/v1/admin/windows`` against a real Temporal dev server, running
the real PatchWindow workflow against the fake fleet."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

import scheduling as schedules
from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from clients.api.routes import windows as windows_routes
from clients.cli.windows_cmd import app as windows_app
from config.settings import ApiSettings, Settings
from contracts.enrollment import AccountRef
from contracts.patching import EnsureWindowsInput, PatchRef
from contracts.providers import PatchGroup
from tests.unit.patching.fake_ssm import FakeSsm
from tests.unit.patching.harness import workers

TOKEN = "admin-" + uuid.uuid4().hex
FAST = schedules.RunShape(poll_interval_seconds=1, poll_hold_seconds=0)


async def _windows_for(client, prefix: str) -> str:
    account_id = str(uuid.uuid4().int % 10**12).zfill(12)
    await schedules.ensure_window_schedules(client, EnsureWindowsInput(
        account=AccountRef(account_id=account_id, role_arn=f"arn:aws:iam::{account_id}:role/R"),
        customer=f"globex-{account_id}", time_zone="America/New_York", queue_prefix=prefix), FAST)
    return account_id


def _fake() -> FakeSsm:
    fake = FakeSsm(catalogue={"windows": [PatchRef("KB5040437", "2024-07 Cumulative Update (KB5040437)")]}, run_polls=1)
    fake.add("windows", PatchGroup.EARLY, 3)
    return fake


async def _cli(monkeypatch, env: WorkflowEnvironment, *args: str):
    monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", env.client.namespace)
    monkeypatch.setenv("COLUMNS", "250")
    return await asyncio.to_thread(CliRunner().invoke, windows_app, list(args))


async def test_cli_lists_triggers_waits_pauses(dev_env: WorkflowEnvironment, queue_prefix: str, monkeypatch) -> None:
    account_id = await _windows_for(dev_env.client, queue_prefix)
    for _ in range(50):  # visibility is eventually consistent
        listed = await _cli(monkeypatch, dev_env, "list", "--account", account_id)
        if listed.output.count(account_id) >= 3:
            break
        await asyncio.sleep(0.1)
    assert listed.exit_code == 0, listed.output
    assert all(group in listed.output for group in ("early", "on-time", "late")) and "globex" in listed.output

    async with workers(dev_env.client, queue_prefix, _fake()):
        triggered = await _cli(monkeypatch, dev_env, "trigger", "--account", account_id, "--group", "early", "--wait")
    assert triggered.exit_code == 0, triggered.output
    assert "succeeded" in triggered.output and "KB5040437" not in triggered.output
    assert "windows: 1" in triggered.output  # the train recorded one Windows patch
    shown = await _cli(monkeypatch, dev_env, "show", "--account", account_id, "--group", "early")
    assert shown.exit_code == 0 and "succeeded" in shown.output and "America/New_York" in shown.output

    paused = await _cli(monkeypatch, dev_env, "pause", "--account", account_id, "--group", "late", "--note", "freeze")
    assert paused.exit_code == 0
    assert (await schedules.show(dev_env.client, account_id, PatchGroup.LATE)).paused
    resumed = await _cli(monkeypatch, dev_env, "resume", "--account", account_id, "--group", "late")
    assert resumed.exit_code == 0 and not (await schedules.show(dev_env.client, account_id, PatchGroup.LATE)).paused

    refused = await _cli(monkeypatch, dev_env, "release", "--account", account_id, "--group", "early")
    assert refused.exit_code == 1 and "never gated" in refused.output
    missing = await _cli(monkeypatch, dev_env, "show", "--account", "000000000001", "--group", "early")
    assert missing.exit_code == 1 and "no patch window" in missing.output


async def test_admin_api(dev_env: WorkflowEnvironment, queue_prefix: str) -> None:
    account_id = await _windows_for(dev_env.client, queue_prefix)
    app = create_app(Settings(api=ApiSettings(admin_token=SecretStr(TOKEN))), TemporalGateway.for_client(dev_env.client))
    if not any(getattr(r, "path", "").startswith("/v1/admin/windows") for r in app.routes):
        app.include_router(windows_routes.router)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    base = f"/v1/admin/windows/{account_id}"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        assert (await http.get("/v1/admin/windows")).status_code == 401
        assert (await http.get("/v1/admin/windows", headers={"Authorization": "Bearer nope"})).status_code == 403

        shown = await http.get(f"{base}/on-time", headers=auth)
        assert shown.status_code == 200 and shown.json()["config"]["days_of_month"] == [15, 21]
        assert (await http.post(f"{base}/on-time/pause", json={"note": "audit"}, headers=auth)).status_code == 200
        assert (await http.get(f"{base}/on-time", headers=auth)).json()["paused"] is True
        async with workers(dev_env.client, queue_prefix, _fake()):
            ran = await http.post(f"{base}/early/trigger", json={"wait": True}, headers=auth, timeout=60)
        assert ran.status_code == 200 and ran.json()["summary"]["outcome"] == "succeeded"
        assert ran.json()["summary"]["succeeded"] == 3
        recorded = await http.post(f"{base}/on-time/release", json={"reason": "fine"}, headers=auth)
        assert recorded.status_code == 200
        assert recorded.json() == {"kind": "recorded", "workflow_id": ran.json()["workflow_id"]}

        assert (await http.get("/v1/admin/windows/000000000001/early", headers=auth)).status_code == 404
        assert (await http.get(f"{base}/sometime", headers=auth)).status_code == 400
        assert (await http.get("/v1/admin/windows/12345/early", headers=auth)).status_code == 400
        assert (await http.post(f"{base}/early/release", headers=auth)).status_code == 409
        bad = await http.post(f"{base}/late/backfill", json={"start": "2026-02-01T00:00:00Z", "minutes": 0},
                              headers=auth)
        assert bad.status_code == 400
        for _ in range(50):
            listed = await http.get("/v1/admin/windows", params={"account": account_id}, headers=auth)
            if len(listed.json()) == 3:
                break
            await asyncio.sleep(0.1)
        assert [w["group"] for w in listed.json()] == ["early", "on-time", "late"]

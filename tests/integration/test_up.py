"""``fleetpatch up`` end to end, as an operator uses it: start, doctor, a worker dies and comes
back, Ctrl-C leaves no process, and a second start finds the first run's workflows."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from clients.cli.doctor_cmd import run_doctor
from config.codec import EncryptionCodec, data_converter
from contracts.providers import WorkerRole
from tests.conftest import free_port

pytestmark = pytest.mark.integration

FLEETPATCH = str(Path(sys.executable).parent / "fleetpatch")


def _env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "FLEETPATCH_"))}
    env["FLEETPATCH_STATE_DIR"] = str(state)
    ports = {
        "FLEETPATCH_LOCAL__TEMPORAL_PORT": free_port(),
        "FLEETPATCH_LOCAL__TEMPORAL_UI_PORT": free_port(),
        "FLEETPATCH_API__PORT": free_port(),
    }
    for name in ("AWS", "GCP", "AZURE_IMDS", "AZURE_ARM", "EC2_IMDS", "VCENTER", "VCENTER_GUEST", "FLEET"):
        ports[f"FLEETPATCH_LOCAL__{name}_PORT"] = free_port()
    env.update({k: str(v) for k, v in ports.items()})
    env["FLEETPATCH_LOCAL__WORKER_METRICS_PORTS"] = json.dumps({role.value: free_port() for role in WorkerRole})
    return env


async def _check_metrics(doc: dict) -> None:
    """Every process listed under ``metrics`` answers: workers with the Temporal SDK's runtime
    metrics, the API with its request metrics."""
    assert set(doc["metrics"]) == {f"worker-{r.value}" for r in WorkerRole} | {"api"}
    async with httpx.AsyncClient(timeout=5) as http:
        await http.get(doc["api"] + "/healthz")  # at least one request to count
        for name, url in doc["metrics"].items():
            deadline = time.monotonic() + 30
            while True:
                try:
                    text = (await http.get(url)).text
                except httpx.HTTPError:
                    text = ""
                wanted = "fleetpatch_api_requests_total{" if name == "api" else "temporal_worker_task_slots_available{"
                if wanted in text:
                    break
                assert time.monotonic() < deadline, f"{name} at {url} has no {wanted} metric:\n{text[:500]}"
                await asyncio.sleep(0.5)


def _start(state: Path, env: dict[str, str]) -> subprocess.Popen:
    log = open(state.parent / "up.out", "ab")  # noqa: SIM115
    return subprocess.Popen([FLEETPATCH, "up"], env=env, cwd=state.parent, stdout=log, stderr=subprocess.STDOUT)


async def _wait_healthy(local_json: Path, proc: subprocess.Popen, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "fleetpatch up exited early"
            if local_json.exists():
                doc = json.loads(local_json.read_text())
                try:
                    if doc.get("running") and (await http.get(doc["api"] + "/healthz")).status_code == 200:
                        ui = await http.get(doc["temporal_ui"])
                        if ui.status_code == 200:
                            return doc
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.5)
    raise AssertionError("fleetpatch up did not become healthy in time")


def _cli(state: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    wide = {**env, "COLUMNS": "200"}
    return subprocess.run([FLEETPATCH, *args], env=wide, cwd=state.parent, capture_output=True, text=True, timeout=120)


def _links_cli(state: Path, env: dict[str, str]) -> None:
    """The operator's link commands, through the admin API of the running stack."""
    added = _cli(state, env, "links", "add", "--customer", "ACME", "--gcp-project", "acme-proj-1", "--time-zone", "Europe/London",
                 "--window", "early.hour=4", "--window", "late.max_concurrency=25%")
    assert added.returncode == 0, added.stderr
    bad_window = _cli(state, env, "links", "add", "--customer", "ACME", "--gcp-project", "acme-proj-1", "--window", "early.hour=25")
    assert bad_window.returncode == 1 and "hour" in bad_window.stderr
    refused = _cli(state, env, "links", "add", "--customer", "ACME", "--aws-account", "123456789012")
    assert refused.returncode == 1 and "role" in refused.stderr
    listed = _cli(state, env, "links", "list")
    assert listed.returncode == 0 and "acme-proj-1" in listed.stdout and "Europe/London" in listed.stdout
    as_json = json.loads(_cli(state, env, "links", "list", "--json").stdout)
    assert as_json["links"][0]["windows"] == {"early": {"hour": 4}, "late": {"max_concurrency": "25%"}}
    dry_run = _cli(state, env, "links", "remove", "gcp", "acme-proj-1")
    assert dry_run.returncode == 0 and "dry run" in dry_run.stdout, dry_run.stderr
    assert "acme-proj-1" in _cli(state, env, "links", "list").stdout
    assert _cli(state, env, "links", "remove", "gcp", "acme-proj-1", "--yes").returncode == 0
    assert "acme-proj-1" not in _cli(state, env, "links", "list").stdout
    assert _cli(state, env, "links", "remove", "gcp", "acme-proj-1", "--yes").returncode == 1


async def _client(doc: dict) -> Client:
    """A client with the local default's payload codec, as the CLI connects."""
    key = Path(doc["codec_keys_file"]).read_text().strip()
    return await Client.connect(doc["temporal"], data_converter=data_converter(EncryptionCodec([key])))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not a running process.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=90)


async def test_up_doctor_restart_and_clean_stop(tmp_path: Path) -> None:
    state = tmp_path / ".fleetpatch"
    env = _env(state)
    proc = _start(state, env)
    try:
        doc = await _wait_healthy(state / "local.json", proc)
        assert set(doc) >= {"api", "temporal", "temporal_ui", "processes", "database"}
        assert doc["database"] == f"sqlite:///{state.resolve() / 'estate.db'}"  # migrated before the API started
        client = await _client(doc)
        result = await run_doctor(client, timeout=20)
        assert result.ok, result.statuses
        await _check_metrics(doc)

        # Kill one worker: the supervisor restarts it and doctor is green again.
        victim = doc["processes"]["worker-gcp"]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = json.loads((state / "local.json").read_text())["processes"].get("worker-gcp")
            if now and now != victim:
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError("worker-gcp was not restarted")
        assert (await run_doctor(client, timeout=20)).ok
        _links_cli(state, env)
        first_run_workflows = [w.id async for w in client.list_workflows("WorkflowType = 'Doctor'")]
        assert first_run_workflows
        # Read raw (no codec), the history holds only encrypted payloads.
        raw = await Client.connect(doc["temporal"])
        history = (await raw.get_workflow_handle(first_run_workflows[0]).fetch_history()).to_json()
        assert base64.b64encode(b"binary/encrypted").decode() in history
        assert base64.b64encode(b"json/plain").decode() not in history
        pids = list(json.loads((state / "local.json").read_text())["processes"].values())
    finally:
        _stop(proc)
    assert proc.returncode == 0
    time.sleep(0.5)
    assert [p for p in pids if _alive(p)] == []
    assert json.loads((state / "local.json").read_text())["processes"] == {}

    # A second start reuses the SQLite file: the first run's workflows are still there.
    proc = _start(state, env)
    try:
        doc = await _wait_healthy(state / "local.json", proc)
        client = await _client(doc)
        for workflow_id in first_run_workflows:
            described = await client.get_workflow_handle(workflow_id).describe()
            assert described.status is not None
    finally:
        _stop(proc)

"""p3: one patch window over N managed instances of one systems account, on a running local
default, answered by simulated agents (``benchmarks.swarm``, a process of its own).

A GCP project is linked with ``early`` as its default ring; one VM enrolls through the API, which
vends the systems account and configures SSM (baselines, patch groups, window schedules). Then N
managed instances register in that account with one multi-use activation tagged ``Patch Group =
early`` and their agents ping. The window is triggered through its Temporal Schedule (as
``fleetpatch windows trigger`` does) and awaited: ``p3_window_s`` is trigger to summary (targets,
scan-less install in commands of 50, cutoff, patch states collected, the estate written).
``p3_max_history_events`` is the largest history of the window and its batches (every run, also
those continued as new); ``p3_peak_worker_rss_mb`` the largest VmHWM of a worker process.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

from benchmarks import enrollment, profile
from benchmarks.figures import Results
from benchmarks.local import LocalDefault, process_use
from clouds.aws.ssm_config import SERVICE_ROLE
from contracts.names import WorkflowName
from contracts.patching import WindowSummary
from contracts.providers import PatchGroup
from localclouds.aws import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
import scheduling


def _ssm_in(local: LocalDefault, account: str):  # noqa: ANN202
    root = boto3.Session(aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)
    creds = root.client("sts", endpoint_url=local.doc["aws"], region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="bench")["Credentials"]
    return boto3.client("ssm", endpoint_url=local.doc["aws"], region_name=REGION,
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


async def _systems_account(local: LocalDefault) -> str:
    project = f"bench-w{int(time.time()) % 100000}"
    with local.admin() as admin:
        admin.post("/v1/admin/links", json={"provider": "gcp", "cloud_account": project, "customer": "benchw",
                                            "default_patch_group": "early"}).raise_for_status()
    vm = (await asyncio.to_thread(enrollment._create_vms, local, project, 1))[0]
    token = (await enrollment._tokens(local, [vm]))[0]
    async with local.api() as http:
        await enrollment._register(http, token)
        answer = await http.post("/v1/registrations", json=enrollment._body(token))
    return answer.json()["systems_account"]


PER_ACTIVATION = 1000  # SSM's largest RegistrationLimit


def _swarm(local: LocalDefault, account: str, count: int, poll: float) -> tuple[subprocess.Popen[bytes], object]:
    ssm = _ssm_in(local, account)
    activations = []
    for first in range(0, count, PER_ACTIVATION):
        created = ssm.create_activation(
            Description="benchmark swarm", DefaultInstanceName="swarm", IamRole=SERVICE_ROLE,
            RegistrationLimit=min(PER_ACTIVATION, count - first), ExpirationDate=datetime.now(UTC) + timedelta(hours=6),
            Tags=[{"Key": "Patch Group", "Value": "early"}])
        activations += ["--activation", f"{created['ActivationId']}:{created['ActivationCode']}"]
    status = local.root / "swarm.json"
    log = open(local.root / "swarm.out", "wb")  # noqa: SIM115 - the child holds it
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.swarm", "--endpoint", local.doc["aws"], "--region", REGION, *activations,
         "--per-activation", str(PER_ACTIVATION), "--count", str(count), "--status", str(status),
         "--poll-interval", str(poll)], stdout=log, stderr=subprocess.STDOUT)
    return proc, status


def _wait_online(proc: subprocess.Popen[bytes], status, count: int, timeout: float) -> float:  # noqa: ANN001
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError("the agent swarm exited")
        try:
            if json.loads(status.read_text())["online"] >= count:
                return time.monotonic() - started
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(2)
    raise TimeoutError(f"{count} agents were not online within {timeout:.0f}s")


async def _histories(local: LocalDefault, since: datetime) -> dict[str, int]:
    client = await local.client()
    query = (f"WorkflowType IN ('{WorkflowName.PATCH_WINDOW}', '{WorkflowName.PATCH_BATCH}')"
             f" AND StartTime > '{since.isoformat().replace('+00:00', 'Z')}'")
    found = {}
    async for execution in client.list_workflows(query):
        described = await client.get_workflow_handle(execution.id, run_id=execution.run_id).describe()
        found[f"{execution.id}/{execution.run_id}"] = described.raw_description.workflow_execution_info.history_length
    return found


async def run(local: LocalDefault, results: Results, count: int, poll: float = 10.0,
              profile_dir: Path | None = None) -> None:
    account = await _systems_account(local)
    proc, status = await asyncio.to_thread(_swarm, local, account, count, poll)
    try:
        online_s = await asyncio.to_thread(_wait_online, proc, status, count, max(300.0, count * 0.5))
        client = await local.client()
        before = local.use()
        swarm_before = process_use(proc.pid)
        since = datetime.now(UTC) - timedelta(seconds=5)
        with profile.sampling(local, profile_dir, "p3-window"):
            started = time.perf_counter()
            workflow_id = await scheduling.trigger(client, account, PatchGroup.EARLY)
            summary: WindowSummary = await scheduling.wait(client, workflow_id)
            window_s = time.perf_counter() - started
        after, swarm_after = local.use(), process_use(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    histories = await _histories(local, since)
    workers = {name: use for name, use in after.items() if name.startswith("worker-")}
    results.set("p3_window_s", window_s)
    results.set("p3_max_history_events", max(histories.values()))
    results.set("p3_peak_worker_rss_mb", max(use.peak_rss_mb for use in workers.values()))
    results.conditions["p3"] = (f"{count} managed instances in one systems account, ring early, default window settings"
                                f" (max concurrency 10%, commands of 50); agents poll every {poll:g}s, commands take 1s")
    cpu = {name: round(after[name].cpu_s - before[name].cpu_s, 1) for name in after if name in before}
    if swarm_before and swarm_after:
        cpu["agent swarm"] = round(swarm_after.cpu_s - swarm_before.cpu_s, 1)
    results.details["p3"] = {
        "instances": count, "agents_online_s": round(online_s, 1), "outcome": str(summary.outcome),
        "succeeded": summary.succeeded, "failed": summary.failed, "runs": len(histories),
        "peak_rss_mb_by_worker": {n: round(u.peak_rss_mb, 1) for n, u in sorted(workers.items())},
        "cpu_s_during_window_by_process": dict(sorted(cpu.items(), key=lambda kv: -kv[1])),
    }

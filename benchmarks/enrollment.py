"""p1: enrollment through the API of a running local default (``fleetpatch up``: every
worker role its own process).

GCP VMs are created in the local GCP and their identity tokens fetched from their metadata server
before any clock starts (so the local cloud's signing is not what is measured). One VM registers
first and vends the project's systems account; then:

- burst: ``burst`` VMs register at once; ``p1_enroll_per_s`` = VMs / time until every one has its
  activation (201);
- trivial: as many Doctor workflows (one ``ping`` activity on the gcp worker, the workflow on the
  orchestrator) started at once on the same server; ``p1_ratio_vs_trivial`` = the ratio of the two
  throughputs;
- paced: ``paced`` VMs register at 10 per second; ``p1_p99_latency_s`` is their latency's p99;
- cost per run, which load does not change: the events and workflow tasks of an enrollment up to
  its activation and of the trivial workflow (median over 10 histories each), and the CPU
  milliseconds the server and the workers spent per enrollment (burst) and per trivial run.

The memory of open enrollments is measured by its own part (``open_enrollments``, p4).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from google.cloud import compute_v1

from benchmarks import history_shape, profile
from benchmarks.figures import Results
from benchmarks.local import LocalDefault
from clouds.gcp.compute import instances_client
from contracts import ids, taskqueues
from contracts.models import DoctorInput, DoctorResult
from contracts.names import WorkflowName
from contracts.providers import WorkerRole

ZONE = "us-east1-b"
IDENTITY = "/computeMetadata/v1/instance/service-accounts/default/identity"
LABELS = {"rackspace-addon-patching": "true"}


def _create_vms(local: LocalDefault, project: str, count: int) -> list[str]:
    sdk = instances_client(api_endpoint=local.doc["gcp"]["compute_endpoint"], credentials_mode="anonymous")

    def one(_: int) -> str:
        name = f"vm-{uuid.uuid4().hex[:10]}"
        resource = compute_v1.Instance(name=name, machine_type=f"zones/{ZONE}/machineTypes/e2-small", labels=LABELS)
        sdk.insert(project=project, zone=ZONE, instance_resource=resource).result(timeout=60)
        return name

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


async def _tokens(local: LocalDefault, vms: list[str]) -> list[str]:
    audience = f"{local.doc['api']}/v1/registrations"
    template = local.doc["gcp"]["metadata"]
    gate = asyncio.Semaphore(16)
    async with local.api() as http:
        async def one(vm: str) -> str:
            async with gate:
                answer = await http.get(template.replace("{name}", vm) + IDENTITY, headers={"Metadata-Flavor": "Google"},
                                        params={"audience": audience, "format": "full"})
            answer.raise_for_status()
            return answer.text

        return list(await asyncio.gather(*(one(vm) for vm in vms)))


def _body(token: str) -> dict:
    return {"provider": "gcp", "identity": {"token": token}, "hostname": "bench",
            "platform": {"os": "ubuntu", "version": "22.04"}}


async def _post(http, token: str):  # noqa: ANN001, ANN202 - an httpx.AsyncClient, its response
    """POST the registration; a connection or read timeout is retried, as the startup script retries."""
    while True:
        try:
            return await http.post("/v1/registrations", json=_body(token))
        except httpx.TransportError:
            await asyncio.sleep(1)


async def _register(http, token: str) -> float:  # noqa: ANN001 - an httpx.AsyncClient
    """Seconds until this VM holds its activation (202s polled as the startup script does)."""
    started = time.perf_counter()
    answer = await _post(http, token)
    location = None
    while answer.status_code in (202, 429):
        if answer.status_code == 429:
            await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
            answer = await _post(http, token)
            continue
        location = answer.headers.get("location", location)
        await asyncio.sleep(0.5)
        try:
            answer = await http.get(location)
        except httpx.TransportError:
            continue
    if answer.status_code not in (200, 201) or not answer.json().get("activation"):
        raise RuntimeError(f"registration answered {answer.status_code}: {answer.text[:300]}")
    return time.perf_counter() - started


async def _trivial(local: LocalDefault, count: int) -> float:
    """Seconds for ``count`` one-activity workflows started at once, all finished."""
    client = await local.client()
    queue = taskqueues.for_role(WorkerRole.ORCHESTRATOR)

    async def one() -> None:
        await client.execute_workflow(
            WorkflowName.DOCTOR, DoctorInput(roles=[WorkerRole.GCP], timeout_seconds=120),
            id=ids.doctor(f"bench-{uuid.uuid4().hex[:12]}"), task_queue=queue, result_type=DoctorResult,
            execution_timeout=timedelta(minutes=10))

    await one()  # warm
    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return time.perf_counter() - started


async def _paced(http, tokens: list[str], per_second: float) -> list[float]:  # noqa: ANN001
    async def later(i: int, token: str) -> float:
        await asyncio.sleep(i / per_second)
        return await _register(http, token)

    return list(await asyncio.gather(*(later(i, t) for i, t in enumerate(tokens))))


def _per_run(start: dict, end: dict, runs: int) -> dict[str, float]:
    """Milliseconds of CPU per run of the processes a run costs most (server, orchestrator, API)."""
    names = ("temporal", "worker-orchestrator", "api", "worker-aws", "worker-gcp")
    return {name: round((end[name].cpu_s - start[name].cpu_s) / runs * 1000, 1) for name in names
            if name in start and name in end}


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


async def run(local: LocalDefault, results: Results, burst: int, paced: int, rate: float = 10.0,
              profile_dir: Path | None = None) -> None:
    project = f"bench-{uuid.uuid4().hex[:8]}"
    with local.admin() as admin:
        linked = admin.post("/v1/admin/links", json={"provider": "gcp", "cloud_account": project, "customer": "bench"})
        linked.raise_for_status()
    vms = await asyncio.to_thread(_create_vms, local, project, 1 + burst + paced)
    tokens = await _tokens(local, vms)
    first, burst_tokens, paced_tokens = tokens[0], tokens[1:1 + burst], tokens[1 + burst:]
    async with local.api() as http:
        vending = await _register(http, first)
        after_vending = datetime.now(UTC)
        before = local.use()
        with profile.sampling(local, profile_dir, "p1-burst"):
            started = time.perf_counter()
            latencies = await asyncio.gather(*(_register(http, t) for t in burst_tokens))
            burst_s = time.perf_counter() - started
        during = local.use()
        trivial_s = await _trivial(local, burst)
        after_trivial = local.use()
        paced_latencies = await _paced(http, paced_tokens, rate) if paced_tokens else []
    per_s, trivial_per_s = burst / burst_s, burst / trivial_s
    results.set("p1_enroll_per_s", per_s)
    results.set("p1_ratio_vs_trivial", per_s / trivial_per_s)
    results.set("p1_p99_latency_s", _p99(paced_latencies) if paced_latencies else None)
    results.conditions["p1"] = (f"GCP VMs of one linked project (systems account vended first), {burst} registering at once;"
                                f" {len(paced_tokens)} at {rate:g}/s; trivial: {burst} Doctor(gcp) workflows at once")
    cpu = {name: round(during[name].cpu_s - before[name].cpu_s, 1) for name in during if name in before}
    client = await local.client()
    enroll_shape = await history_shape.median_shape(client, WorkflowName.ENROLL_VM, after_vending, until=history_shape.ANSWERED)
    trivial_shape = await history_shape.median_shape(client, WorkflowName.DOCTOR, after_vending)
    results.details["p1"] = {
        "first_vm_with_vending_s": round(vending, 2), "burst_s": round(burst_s, 2),
        "burst_latency_p50_s": round(statistics.median(latencies), 2), "burst_latency_max_s": round(max(latencies), 2),
        "trivial_s": round(trivial_s, 2), "trivial_per_s": round(trivial_per_s, 2),
        "paced_latency_p50_s": round(statistics.median(paced_latencies), 3) if paced_latencies else None,
        "cpu_s_during_burst_by_process": dict(sorted(cpu.items(), key=lambda kv: -kv[1])),
        # CPU per run of the server and the orchestrator: what the ratio would be on an idle machine
        "cpu_ms_per_enrollment": _per_run(before, during, burst),
        "cpu_ms_per_trivial": _per_run(during, after_trivial, burst + 1),
        "enrollment_to_activation": enroll_shape,
        "trivial_workflow": trivial_shape,
    }

"""p4: the orchestrator worker's memory per open enrollment, measured at hundreds of them.

GCP VMs of one linked project register through ``POST /v1/registrations`` (one first: it vends
the systems account and loads every module the enrollment needs), ``open`` more in steps of a
fixed number in flight; no agent ever registers, so every enrollment stays open, waiting for its
agent (its ``await_managed_instance`` activity polls on the aws worker; the workflow has no task
until the agent comes online). After each quarter the orchestrator's RSS is read.

``p4_rss_mb_per_1000_open`` = the RSS growth from after the first enrollment to after the last
one answered, per 1,000 open enrollments (measured, not extrapolated: the part refuses fewer than
``MIN_OPEN``); each VM's identity token is fetched just before it registers. The quarters show whether the growth is linear (every run kept in the sticky
cache) or levels off (a bounded cache). What a bounded cache costs is measured too: an evicted
open enrollment replays its history on its next task. The part queries the status of the
enrollments opened first (evicted once more are open than the cache holds), which makes the
orchestrator itself replay each, then queries them again (cached now): latency and orchestrator
CPU per query, evicted against cached. It also replays one open enrollment's history in this
process with the workers' own runner (cold, then warm).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

from benchmarks import enrollment
from benchmarks.figures import Results
from benchmarks.local import LocalDefault
from contracts.enrollment import EnrollmentStatusQuery
from contracts.names import QueryName, WorkflowName

MIN_OPEN = 500
IN_FLIGHT = 25
ORCHESTRATOR = "worker-orchestrator"
QUERIED = 20
OPEN = f"WorkflowType = '{WorkflowName.ENROLL_VM}' AND ExecutionStatus = 'Running'"


async def _replay_cost(local: LocalDefault) -> dict[str, float]:
    """Fetch an open enrollment's history and replay it, as a worker does after an eviction."""
    from temporalio.worker import Replayer

    from workers.sandbox import workflow_runner
    from workflows.registry import ALL_WORKFLOWS

    client = await local.client()
    execution = await anext(aiter(client.list_workflows(OPEN, limit=1)))
    started = time.perf_counter()
    history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
    fetched = time.perf_counter()
    replayer = Replayer(workflows=list(ALL_WORKFLOWS), data_converter=client.data_converter,
                        workflow_runner=workflow_runner())  # the workers' own sandbox
    await replayer.replay_workflow(history, raise_on_replay_failure=True)  # cold: the first in this process
    cold = time.perf_counter()
    # Warm, as in a worker that has run enrollments before: one replay worker for five copies
    # (``replay_workflow`` makes a replay worker of its own for each call).
    await replayer.replay_workflows(_copies(history, 5), raise_on_replay_failure=True)
    warm = time.perf_counter()
    return {"events": len(history.events), "fetch_ms": round((fetched - started) * 1000, 1),
            "replay_cold_ms": round((cold - fetched) * 1000, 1), "replay_warm_ms": round((warm - cold) / 5 * 1000, 1)}


async def _copies(history, count: int):  # noqa: ANN001, ANN202 - a WorkflowHistory, an async iterator of it
    for _ in range(count):
        yield history


async def _query_cost(local: LocalDefault, count: int = QUERIED, query: str = OPEN) -> dict[str, float]:
    """What an evicted open enrollment costs the orchestrator itself on its next task, against a
    cached one: the status of the ``count`` enrollments opened first (the least recently used, so
    evicted once more are open than the cache holds) is queried one at a time, which makes the
    worker replay each one's history (then it is cached), then the same queries again."""
    client = await local.client()
    runs = sorted([run async for run in client.list_workflows(query)], key=lambda run: run.start_time)[1:1 + count]
    handles = [client.get_workflow_handle(run.id, run_id=run.run_id) for run in runs]

    async def one_round() -> tuple[float, float]:
        cpu, walls = local.use()[ORCHESTRATOR].cpu_s, []
        for handle in handles:
            started = time.perf_counter()
            await handle.query(QueryName.STATUS, EnrollmentStatusQuery(secret_digest="-"))
            walls.append(time.perf_counter() - started)
        return statistics.median(walls) * 1000, (local.use()[ORCHESTRATOR].cpu_s - cpu) / len(handles) * 1000

    evicted_ms, evicted_cpu_ms = await one_round()
    cached_ms, cached_cpu_ms = await one_round()
    return {"queried": len(handles), "evicted_median_ms": round(evicted_ms, 1), "evicted_cpu_ms": round(evicted_cpu_ms, 1),
            "cached_median_ms": round(cached_ms, 1), "cached_cpu_ms": round(cached_cpu_ms, 1)}


async def _open(local: LocalDefault, http, vms: list[str]) -> list[float]:  # noqa: ANN001
    """Register ``vms``, IN_FLIGHT at a time; each fetches its identity token just before it
    registers (a token lives 10 minutes; on a loaded machine a quarter takes longer)."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(vm: str) -> float:
        async with gate:
            token = (await enrollment._tokens(local, [vm]))[0]
            return await enrollment._register(http, token)

    return list(await asyncio.gather(*(one(vm) for vm in vms)))


def _rss(local: LocalDefault) -> float:
    return local.use()[ORCHESTRATOR].rss_mb


async def run(local: LocalDefault, results: Results, count: int, cache: str) -> None:
    if count < MIN_OPEN:
        raise ValueError(f"p4 needs at least {MIN_OPEN} open enrollments to be a measurement, not {count}")
    project = f"bench-o{uuid.uuid4().hex[:8]}"
    with local.admin() as admin:
        admin.post("/v1/admin/links", json={"provider": "gcp", "cloud_account": project,
                                            "customer": "benchopen"}).raise_for_status()
    vms = await asyncio.to_thread(enrollment._create_vms, local, project, 1 + count)
    async with local.api() as http:
        await enrollment._register(http, (await enrollment._tokens(local, vms[:1]))[0])
        await asyncio.sleep(2)
        before = _rss(local)
        curve = {0: round(before, 1)}
        started = time.perf_counter()
        marks = [count * q // 4 for q in range(5)]
        for low, high in zip(marks, marks[1:]):
            await _open(local, http, vms[1 + low:1 + high])
            await asyncio.sleep(2)
            curve[high] = round(_rss(local), 1)
        opened_s = time.perf_counter() - started
    after = curve[count]
    results.set("p4_rss_mb_per_1000_open", (after - before) / count * 1000)
    results.conditions["p4"] = (f"{count} enrollments left open (no agent registers), {IN_FLIGHT} registering at a time;"
                                f" orchestrator sticky cache {cache}; RSS after the first enrollment vs after the last")
    results.details["p4"] = {
        "open_enrollments": count, "orchestrator_sticky_cache": cache, "opened_s": round(opened_s, 1),
        "orchestrator_rss_mb_by_open": curve,
        "orchestrator_peak_rss_mb": round(local.use()[ORCHESTRATOR].peak_rss_mb, 1),
        "query_of_an_evicted_vs_a_cached_enrollment": await _cost(_query_cost(local)),
        "replay_of_an_evicted_enrollment": await _cost(_replay_cost(local)),
    }


async def _cost(measure) -> dict[str, float | str]:  # noqa: ANN001 - a coroutine giving a dict
    try:
        return await measure
    except Exception as err:  # noqa: BLE001 - the figure stands; the detail says why the cost is missing
        return {"error": f"{type(err).__name__}: {err}"[:200]}


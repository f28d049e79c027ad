"""``python -m benchmarks.sandbox_memory [N]``: what each open EnrollVm run costs a worker in
memory, with the SDK's own sandbox and with the workers' runner (``workers.sandbox``), each in a
process of its own (memory a process freed would flatter the second measure) against one dev server.

A micro-measure beside p4 (which measures the whole orchestrator of a ``fleetpatch up``): each run
waits for its first activity, which no worker here answers, so it stays open in the sticky cache
(sized to hold them all). Prints the RSS growth per 1,000 open runs for each runner.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import tracemalloc
import uuid

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker, WorkflowRunner

from clients.local.tools import temporal_cli
from contracts import search_attributes, taskqueues
from contracts.enrollment import EnrollInput, EnrollmentPolicy
from contracts.names import WorkflowName
from contracts.providers import OsFamily, Provider, WorkerRole
from workers.sandbox import workflow_runner
from workflows.registry import ALL_WORKFLOWS


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS"))


async def _open_runs(env: WorkflowEnvironment, runner: WorkflowRunner | None, n: int) -> tuple[float, float]:
    """RSS growth and Python heap growth (traced allocations; MB) while ``n`` enrollments are open
    in one worker."""
    prefix = f"mem{uuid.uuid4().hex[:6]}"
    queue = taskqueues.for_role(WorkerRole.ORCHESTRATOR, prefix)
    extra = {"workflow_runner": runner} if runner else {}
    async with Worker(env.client, task_queue=queue, workflows=list(ALL_WORKFLOWS), max_cached_workflows=n + 10, **extra):
        async def start(i: int) -> None:
            inp = EnrollInput(
                provider=Provider.GCP, instance_key=f"bench-project/{i}", identity={"token": "-"}, hostname=f"vm-{i}",
                os=OsFamily.UBUNTU, os_version="22.04", secret_digest=hashlib.sha256(b"bench").hexdigest(),
                policy=EnrollmentPolicy(), queue_prefix=prefix,
            )
            await env.client.start_workflow(WorkflowName.ENROLL_VM, inp, id=f"{prefix}-{i}", task_queue=queue)

        await start(0)  # the first run imports what every run shares
        await asyncio.sleep(3)
        tracemalloc.start()
        base = _rss_mb()
        for first in range(1, n + 1, 50):
            await asyncio.gather(*(start(i) for i in range(first, min(first + 50, n + 1))))
        await asyncio.sleep(8)  # every run has had its first workflow task
        traced = tracemalloc.get_traced_memory()[0] / 2**20
        tracemalloc.stop()
        return _rss_mb() - base, traced


async def measure(target: str, runner_name: str, n: int) -> None:
    env = WorkflowEnvironment.from_client(await Client.connect(target))
    grown, heap = await _open_runs(env, RUNNERS[runner_name](), n)
    print(f"{runner_name}: {n} open enrollments, RSS +{grown:.1f} MB = {grown / n * 1000:.0f} MB per 1,000; "
          f"Python heap +{heap:.1f} MB = {heap / n * 1000:.0f} MB per 1,000", flush=True)
    os._exit(0)  # the figure is out; the worker's open runs need no orderly shutdown


RUNNERS = {"SDK sandbox": lambda: None, "workers' runner": workflow_runner}


async def main(n: int) -> None:
    """One dev server (so a child that dies leaves nothing behind), one child process per runner."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()), search_attributes=search_attributes.ALL,
        dev_server_extra_args=["--log-level", "error"],
    )
    try:
        target = env.client.service_client.config.target_host
        for name in RUNNERS:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.sandbox_memory", str(n), name, target, stdout=asyncio.subprocess.PIPE
            )
            out, _ = await child.communicate()
            figure = [line for line in out.decode().splitlines() if "open enrollments" in line]
            if not figure:
                sys.exit(f"{name}: no figure (exit {child.returncode})")
            print(figure[0], flush=True)
    finally:
        await env.shutdown()


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    if len(sys.argv) > 3:
        asyncio.run(measure(sys.argv[3], sys.argv[2], count))
    else:
        asyncio.run(main(count))
        sys.stdout.flush()
        os._exit(0)  # past this point the SDK's runtime threads can crash the interpreter's teardown

"""Doctor workflow: every role answers on its own queue; a missing role shows as failed."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from temporalio.testing import WorkflowEnvironment

from clients.cli.doctor_cmd import run_doctor
from config.settings import Settings
from contracts.providers import WorkerRole
from workers.runner import make_worker


async def _run_doctor_with(env: WorkflowEnvironment, prefix: str, roles: list[WorkerRole], timeout: float):
    settings = Settings(task_queue_prefix=prefix)
    async with AsyncExitStack() as stack:
        for role in roles:
            worker, _ = make_worker(env.client, role, settings)
            await stack.enter_async_context(worker)
        return await run_doctor(env.client, prefix=prefix, timeout=timeout)


async def test_all_roles_answer(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    result = await _run_doctor_with(time_skipping_env, queue_prefix, list(WorkerRole), timeout=10)
    assert result.ok
    assert [s.role for s in result.statuses] == list(WorkerRole)
    for status in result.statuses:
        assert status.task_queue.startswith(queue_prefix)
        assert "pid" in status.detail


async def test_missing_role_fails(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    present = [r for r in WorkerRole if r is not WorkerRole.VMWARE]
    result = await _run_doctor_with(time_skipping_env, queue_prefix, present, timeout=5)
    assert not result.ok
    by_role = {s.role: s for s in result.statuses}
    assert not by_role[WorkerRole.VMWARE].ok
    assert "no answer" in by_role[WorkerRole.VMWARE].detail
    assert all(by_role[r].ok for r in present)


async def test_orchestrator_down_reports_from_pollers(dev_env: WorkflowEnvironment, queue_prefix: str) -> None:
    # Only the gcp worker runs: the doctor workflow itself cannot run, so the CLI falls back to
    # asking each task queue who polls it.
    settings = Settings(task_queue_prefix=queue_prefix)
    worker, _ = make_worker(dev_env.client, WorkerRole.GCP, settings)
    async with worker:
        await asyncio.sleep(0.5)  # let the worker's pollers reach the server
        result = await run_doctor(dev_env.client, prefix=queue_prefix, timeout=1)
    by_role = {s.role: s for s in result.statuses}
    assert not result.ok
    assert by_role[WorkerRole.GCP].ok, by_role[WorkerRole.GCP].detail
    assert not by_role[WorkerRole.ORCHESTRATOR].ok
    assert not by_role[WorkerRole.AZURE].ok

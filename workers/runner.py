"""Run one worker role until SIGTERM/SIGINT, then shut down gracefully."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import signal
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from config.settings import Settings, WorkerTuning
from contracts import taskqueues
from contracts.providers import WorkerRole
from workers.interceptors import ErrorMappingInterceptor
from workers.roles import WorkerParts, build
from workers.sandbox import workflow_runner

log = logging.getLogger("fleetpatch.worker")


def make_worker(client: Client, role: WorkerRole, settings: Settings) -> tuple[Worker, concurrent.futures.Executor | None]:
    worker, executor, _ = _make(client, role, settings)
    return worker, executor


def _make(client: Client, role: WorkerRole, settings: Settings) -> tuple[Worker, concurrent.futures.Executor | None, WorkerParts]:
    queue = taskqueues.for_role(role, settings.task_queue_prefix)
    parts = build(role, settings, queue, client)
    tuning = getattr(settings.worker, role.value)
    threads = tuning.sync_threads or parts.sync_threads
    executor = (
        concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"{role}-act")
        if parts.sync_threads
        else None
    )
    worker = Worker(
        client,
        task_queue=queue,
        activities=parts.activities,
        workflows=parts.workflows,
        workflow_runner=workflow_runner(),
        activity_executor=executor,
        interceptors=[ErrorMappingInterceptor()],
        graceful_shutdown_timeout=timedelta(seconds=20),
        **worker_options(tuning),
    )
    return worker, executor, parts


def worker_options(tuning: WorkerTuning) -> dict[str, int]:
    """The Worker keyword arguments a role's tuning sets (the SDK's defaults for the rest)."""
    options = {
        "max_concurrent_workflow_tasks": tuning.max_concurrent_workflow_tasks,
        "max_concurrent_activities": tuning.max_concurrent_activities,
        "max_concurrent_workflow_task_polls": tuning.workflow_task_polls,
        "max_concurrent_activity_task_polls": tuning.activity_task_polls,
        "max_cached_workflows": tuning.max_cached_workflows,
    }
    return {name: value for name, value in options.items() if value is not None}


async def _on_start(role: WorkerRole, parts: WorkerParts) -> None:
    for step in parts.on_start:
        try:
            await step()
        except Exception:  # noqa: BLE001 - best effort: the worker runs regardless, the log says why
            log.exception("worker start-up step failed", extra={"role": role.value})


async def run(client: Client, role: WorkerRole, settings: Settings, stop: asyncio.Event | None = None) -> None:
    worker, executor, parts = _make(client, role, settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    log.info("worker starting", extra={"role": role.value, "task_queue": worker.task_queue})
    async with worker:
        await _on_start(role, parts)
        await stop.wait()
        log.info("worker stopping", extra={"role": role.value})
    if executor is not None:
        executor.shutdown(wait=True)
    log.info("worker stopped", extra={"role": role.value})

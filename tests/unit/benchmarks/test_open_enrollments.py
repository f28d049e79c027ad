"""p4's measure of what the bounded sticky cache costs: the status queries it times really make
the worker replay the evicted enrollments the first time, and find them cached the second."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections import Counter
from typing import Any

from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from benchmarks import open_enrollments
from benchmarks.local import process_use
from contracts import taskqueues
from contracts.enrollment import EnrollInput, EnrollmentPolicy
from contracts.names import WorkflowName
from contracts.providers import OsFamily, Provider, WorkerRole
from workers.sandbox import workflow_runner
from workflows.enroll import EnrollVmWorkflow

#: How many times each workflow id's run has been executed by the worker (its first task, or a replay).
EXECUTED: Counter[str] = Counter()


class _CountExecutions(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:  # noqa: A002 - the SDK's name
        EXECUTED[workflow.info().workflow_id] += 1
        return await super().execute_workflow(input)


class _Counting(Interceptor):
    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:  # noqa: A002
        return _CountExecutions


class _ThisProcess:
    """The part of a running local default the measure reads: its client, and this process as the orchestrator."""

    def __init__(self, env: WorkflowEnvironment) -> None:
        self._env = env

    async def client(self):  # noqa: ANN201
        return self._env.client

    def use(self) -> dict:
        return {open_enrollments.ORCHESTRATOR: process_use(os.getpid())}


async def test_evicted_enrollments_replay_once_then_answer_from_the_cache(dev_env: WorkflowEnvironment, queue_prefix: str) -> None:
    queue = taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix)
    ids = [f"{queue_prefix}enroll-{i}" for i in range(7)]
    async with Worker(dev_env.client, task_queue=queue, workflows=[EnrollVmWorkflow], max_cached_workflows=3,
                      workflow_runner=workflow_runner(), interceptors=[_Counting()]):
        for i, wid in enumerate(ids):  # each waits for its first activity, which no worker here runs
            await dev_env.client.start_workflow(WorkflowName.ENROLL_VM, EnrollInput(
                provider=Provider.GCP, instance_key=f"p/vm-{i}", identity={"token": "-"}, hostname=f"vm-{i}",
                os=OsFamily.UBUNTU, os_version="22.04", secret_digest=hashlib.sha256(b"s").hexdigest(),
                policy=EnrollmentPolicy(), queue_prefix=queue_prefix), id=wid, task_queue=queue)
            while EXECUTED[wid] < 1:  # one at a time, so the start times order them
                await asyncio.sleep(0.05)
        scope = f"{open_enrollments.OPEN} AND TaskQueue = '{queue}'"
        while len([run async for run in dev_env.client.list_workflows(scope)]) < len(ids):
            await asyncio.sleep(0.1)
        cost = await open_enrollments._query_cost(_ThisProcess(dev_env), count=2, query=scope)
    # The second and third opened (the first is skipped, as the benchmark's vends the account) were
    # evicted by the four opened after them: replayed for the first query, cached for the second.
    assert [EXECUTED[wid] for wid in ids] == [1, 2, 2, 1, 1, 1, 1]
    assert cost["queried"] == 2
    assert cost["evicted_median_ms"] > 0 and cost["cached_median_ms"] > 0
    assert cost["evicted_cpu_ms"] >= 0 and cost["cached_cpu_ms"] >= 0

"""Liveness heartbeats (``workers.interceptors``): an activity blocked in one long call, which never
heartbeats itself, still proves its worker alive; a worker that stops running it is noticed after
the heartbeat timeout, not the start-to-close timeout; the activity's own details are kept."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from workers.interceptors import ErrorMappingInterceptor

HEARTBEAT = timedelta(seconds=1)


@activity.defn(name="liveness_blocking_call")
def blocking_call(seconds: float) -> str:
    """One call that takes longer than the heartbeat timeout and never heartbeats."""
    time.sleep(seconds)
    return "done"


@activity.defn(name="liveness_with_details")
def with_details(seconds: float) -> str:
    activity.heartbeat("step 1")
    time.sleep(seconds)
    return "done"


@workflow.defn(name="LivenessProbe", sandboxed=False)
class LivenessProbe:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            name, 3.5, start_to_close_timeout=timedelta(seconds=60), heartbeat_timeout=HEARTBEAT,
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def _run(client: Client, name: str, *, interceptors: list) -> tuple[str | BaseException, float]:
    queue = f"liveness-{uuid.uuid4().hex[:8]}"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        async with Worker(client, task_queue=queue, workflows=[LivenessProbe], activities=[blocking_call, with_details],
                          activity_executor=pool, interceptors=interceptors):
            started = time.monotonic()
            try:
                result: str | BaseException = await client.execute_workflow(
                    LivenessProbe.run, name, id=f"liveness-{uuid.uuid4().hex[:8]}", task_queue=queue)
            except WorkflowFailureError as err:
                result = err.cause
            return result, time.monotonic() - started


async def test_a_long_call_is_kept_alive_by_its_worker(dev_env: WorkflowEnvironment) -> None:
    result, _ = await _run(dev_env.client, "liveness_blocking_call", interceptors=[ErrorMappingInterceptor()])
    assert result == "done"


async def test_without_liveness_beats_the_same_call_times_out_on_its_heartbeat(dev_env: WorkflowEnvironment) -> None:
    """The control: what a dead worker looks like, noticed after the heartbeat timeout (seconds,
    not the minute of start-to-close)."""
    result, seconds = await _run(dev_env.client, "liveness_blocking_call", interceptors=[])
    assert isinstance(result, ActivityError) and isinstance(result.cause, TimeoutError)
    assert result.cause.type is TimeoutType.HEARTBEAT
    assert seconds < 30


async def test_the_activity_s_own_details_are_repeated(dev_env: WorkflowEnvironment) -> None:
    client = dev_env.client
    queue = f"liveness-{uuid.uuid4().hex[:8]}"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        async with Worker(client, task_queue=queue, workflows=[LivenessProbe], activities=[with_details],
                          activity_executor=pool, interceptors=[ErrorMappingInterceptor()]):
            handle = await client.start_workflow(
                LivenessProbe.run, "liveness_with_details", id=f"liveness-{uuid.uuid4().hex[:8]}", task_queue=queue)
            await asyncio.sleep(2.5)  # past the activity's own beat and several liveness beats
            pending = (await handle.describe()).raw_description.pending_activities
            assert len(pending) == 1 and pending[0].HasField("last_heartbeat_time")
            (detail,) = await client.data_converter.decode(pending[0].heartbeat_details.payloads)
            assert detail == "step 1"
            assert await handle.result() == "done"

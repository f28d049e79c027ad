"""Doctor: one activity on every role's task queue, to prove each worker role answers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from contracts import taskqueues
    from contracts.models import ActivityName, DoctorInput, DoctorResult, PingInput, PingResult, RoleStatus
    from contracts.providers import WorkerRole


@workflow.defn(name="Doctor")
class DoctorWorkflow:
    @workflow.run
    async def run(self, inp: DoctorInput) -> DoctorResult:
        statuses = await asyncio.gather(*(self._ping(role, inp) for role in inp.roles))
        return DoctorResult(statuses=list(statuses))

    async def _ping(self, role: WorkerRole, inp: DoctorInput) -> RoleStatus:
        queue = taskqueues.for_role(role, inp.queue_prefix)
        started = workflow.now()
        try:
            result: PingResult = await workflow.execute_activity(
                ActivityName.PING,
                PingInput(role=role, sent_by=workflow.info().workflow_id),
                task_queue=queue,
                result_type=PingResult,
                # Waiting for a poller is what we measure: the whole budget is schedule-to-close.
                schedule_to_close_timeout=timedelta(seconds=inp.timeout_seconds),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            cause = err.cause.__class__.__name__ if err.cause else "error"
            return RoleStatus(role=role, task_queue=queue, ok=False, detail=f"no answer ({cause})")
        elapsed = (workflow.now() - started).total_seconds() * 1000
        if result.role != role:
            return RoleStatus(
                role=role, task_queue=queue, ok=False,
                detail=f"answered by a {result.role} worker: misconfigured queue",
            )
        return RoleStatus(
            role=role,
            task_queue=queue,
            ok=True,
            detail=f"pid {result.pid} on {result.hostname}, fleetpatch {result.version}",
            latency_ms=round(elapsed, 1),
        )

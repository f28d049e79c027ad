"""Doctor: one activity on every role's task queue, to prove each worker role answers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from contracts.models import ActivityName, DoctorInput, DoctorResult, PingInput, PingResult, RoleStatus
    from contracts.names import WorkflowName
    from contracts.providers import WorkerRole
    from workflows import options
    from workflows.calls import Calls


@workflow.defn(name=WorkflowName.DOCTOR)
class DoctorWorkflow:
    @workflow.run
    async def run(self, inp: DoctorInput) -> DoctorResult:
        statuses = await asyncio.gather(*(self._ping(role, inp) for role in inp.roles))
        return DoctorResult(statuses=list(statuses))

    async def _ping(self, role: WorkerRole, inp: DoctorInput) -> RoleStatus:
        calls = Calls(inp.queue_prefix)
        queue = calls.queue(role)
        started = workflow.now()
        ping = PingInput(role=role, sent_by=workflow.info().workflow_id)
        try:
            result = await calls.activity(
                role, ActivityName.PING, ping, PingResult, options.ping(timedelta(seconds=inp.timeout_seconds))
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

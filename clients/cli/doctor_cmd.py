"""``fleetpatch doctor``: prove every worker role answers on its own task queue."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import typer
from rich.table import Table
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from clients.cli.common import console, err_console, temporal
from config.settings import Settings
from contracts import ids, taskqueues
from contracts.models import DoctorInput, DoctorResult, RoleStatus
from contracts.names import WorkflowName
from contracts.providers import WorkerRole


def doctor(
    timeout: float = typer.Option(10.0, help="Seconds each role has to answer."),
) -> None:
    """Run one activity on every role's task queue and show who answered."""
    settings = Settings()
    result = asyncio.run(_doctor(settings, timeout))
    table = Table(title="fleetpatch doctor")
    for column in ("role", "task queue", "status", "latency", "detail"):
        table.add_column(column)
    for s in result.statuses:
        latency = f"{s.latency_ms:.0f} ms" if s.latency_ms is not None else "-"
        table.add_row(s.role.value, s.task_queue, "[green]ok[/green]" if s.ok else "[red]FAIL[/red]", latency, s.detail)
    console.print(table)
    if not result.ok:
        err_console.print("[red]some roles did not answer[/red]")
        raise typer.Exit(1)


async def run_doctor(client: Client, *, prefix: str = "", timeout: float = 10.0) -> DoctorResult:
    roles = list(WorkerRole)
    try:
        return await client.execute_workflow(
            WorkflowName.DOCTOR,
            DoctorInput(roles=roles, queue_prefix=prefix, timeout_seconds=timeout),
            id=ids.doctor(uuid.uuid4().hex[:12]),
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, prefix),
            result_type=DoctorResult,
            execution_timeout=timedelta(seconds=timeout + 10),
        )
    except (WorkflowFailureError, RPCError) as err:
        # The orchestrator itself did not run the workflow: report what the queues say instead.
        return await _from_pollers(client, roles, prefix, f"doctor workflow did not finish: {err}")


async def _doctor(settings: Settings, timeout: float) -> DoctorResult:
    client = await temporal(settings)
    return await run_doctor(client, prefix=settings.task_queue_prefix, timeout=timeout)


async def _from_pollers(client: Client, roles: list[WorkerRole], prefix: str, why: str) -> DoctorResult:
    statuses = []
    for role in roles:
        queue = taskqueues.for_role(role, prefix)
        try:
            response = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                )
            )
            pollers = len(response.pollers)
        except RPCError as err:
            statuses.append(RoleStatus(role=role, task_queue=queue, ok=False, detail=str(err)))
            continue
        ok = pollers > 0 and role != WorkerRole.ORCHESTRATOR
        detail = f"{pollers} poller(s) on the queue" if pollers else "no worker polling"
        if role == WorkerRole.ORCHESTRATOR:
            detail = why
        statuses.append(RoleStatus(role=role, task_queue=queue, ok=ok, detail=detail))
    return DoctorResult(statuses=statuses)

"""The compliance-sync schedule (ensured idempotently) and the on-demand start, on a real Temporal
dev server (the time-skipping server has no schedules)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from config.settings import ComplianceSettings
from contracts import taskqueues
from contracts.compliance import SCHEDULE_ID, ComplianceSyncInput
from contracts.names import WorkflowName
from contracts.providers import WorkerRole
from scheduling.compliance import ensure_sync_schedule, start_sync, sync_status, wait_sync
from tests.unit.compliance.test_workflow import ACCOUNTS, StubAws
from workflows.compliance import ComplianceSyncWorkflow


async def test_schedule_is_ensured_idempotently(dev_env: WorkflowEnvironment, queue_prefix: str) -> None:
    client = dev_env.client
    settings = ComplianceSettings(interval=timedelta(minutes=15), max_concurrent_accounts=4)
    handle = client.get_schedule_handle(SCHEDULE_ID)
    try:
        await handle.delete()
    except Exception:  # noqa: BLE001 - not there yet
        pass
    assert await ensure_sync_schedule(client, settings, queue_prefix) == "created"
    await handle.pause(note="an operator paused it")
    changed = settings.model_copy(update={"interval": timedelta(minutes=5)})
    assert await ensure_sync_schedule(client, changed, queue_prefix) == "updated"
    described = await handle.describe()
    assert described.schedule.state.paused  # an update keeps the operator's pause
    assert [i.every for i in described.schedule.spec.intervals] == [timedelta(minutes=5)]
    assert described.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == WorkflowName.COMPLIANCE_SYNC
    assert action.task_queue == taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix)
    (inp,) = await client.data_converter.decode(action.args, [ComplianceSyncInput])
    assert (inp.queue_prefix, inp.max_concurrent_accounts) == (queue_prefix, 4)
    await handle.delete()


async def test_on_demand_sync(dev_env: WorkflowEnvironment, queue_prefix: str) -> None:
    client = dev_env.client
    stub = StubAws()
    stub.gate.set()
    request = uuid.uuid4().hex
    async with Worker(client, task_queue=taskqueues.for_role(WorkerRole.AWS, queue_prefix),
                      activities=[stub.list_accounts, stub.sync, stub.aggregates]), \
            Worker(client, task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix),
                   workflows=[ComplianceSyncWorkflow]):
        first = await start_sync(client, ComplianceSettings(), queue_prefix=queue_prefix, request=request)
        again = await start_sync(client, ComplianceSettings(), queue_prefix=queue_prefix, request=request)
        assert first.id == again.id == f"compliance-sync/manual/{request}"
        assert first.result_run_id == again.result_run_id  # a double click joins the same run
        result = await wait_sync(client, first.id)
        status = await sync_status(client, first.id)
    assert result.status.accounts_total == len(ACCOUNTS) and result.status.accounts_failed == 1
    assert (status.phase, status.accounts_done) == ("done", len(ACCOUNTS))


async def test_the_orchestrator_worker_ensures_the_schedule_at_start(monkeypatch, caplog) -> None:
    from config.settings import Settings
    from workers import roles, runner

    ensured: list[tuple[ComplianceSettings, str]] = []

    async def fake_ensure(client: object, settings: ComplianceSettings, prefix: str) -> str:
        ensured.append((settings, prefix))
        raise RuntimeError("Temporal said no")

    monkeypatch.setattr("scheduling.compliance.ensure_sync_schedule", fake_ensure)
    on = roles.build(WorkerRole.ORCHESTRATOR, Settings(task_queue_prefix="p-"), "p-fleetpatch", client=None)  # type: ignore[arg-type]
    off = roles.build(WorkerRole.ORCHESTRATOR, Settings(compliance=ComplianceSettings(schedule=False)), "fleetpatch",
                      client=None)  # type: ignore[arg-type]
    assert len(on.on_start) == 1 and off.on_start == []
    await runner._on_start(WorkerRole.ORCHESTRATOR, on)  # a failure is logged, never raised
    assert [p for _, p in ensured] == ["p-"] and "start-up step failed" in caplog.text

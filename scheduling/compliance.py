"""ComplianceSync, scheduled and on demand.

- ``ensure_sync_schedule``: the Temporal Schedule ``compliance-sync`` (every ``interval``,
  15 minutes by default; overlap SKIP, so a slow sync is never doubled). The orchestrator worker
  calls it when it starts; it is idempotent and brings an existing schedule up to date (keeping
  its pause state).
- ``start_sync``: an on-demand run (``POST /v1/admin/compliance/sync``, ``fleetpatch compliance
  sync``), workflow id ``compliance-sync/manual/{request}``; a second start with the same
  ``request`` returns the run already going. Scheduled runs are ``compliance-sync-{time}``.
- ``sync_status`` (the run's ``status`` query: accounts done/total) and ``wait_sync``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy

from config.settings import ComplianceSettings
from contracts import taskqueues
from contracts.compliance import (
    SCHEDULE_ID,
    ComplianceSyncInput,
    ComplianceSyncResult,
    ComplianceSyncStatus,
    manual_workflow_id,
)
from contracts.names import QueryName, WorkflowName
from contracts.providers import WorkerRole

#: A sync that runs longer than this is ended (the next one starts over).
SYNC_TIMEOUT = timedelta(hours=2)


def sync_input(settings: ComplianceSettings, queue_prefix: str = "") -> ComplianceSyncInput:
    return ComplianceSyncInput(queue_prefix=queue_prefix, max_concurrent_accounts=settings.max_concurrent_accounts)


def build_sync_schedule(settings: ComplianceSettings, queue_prefix: str = "", state: ScheduleState | None = None) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WorkflowName.COMPLIANCE_SYNC,
            sync_input(settings, queue_prefix),
            id=SCHEDULE_ID,
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix),
            execution_timeout=SYNC_TIMEOUT,
            static_summary="fill the estate store from SSM, every systems account",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=settings.interval)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=state or ScheduleState(note=f"every {settings.interval}"),
    )


async def ensure_sync_schedule(client: Client, settings: ComplianceSettings, queue_prefix: str = "") -> str:
    """Create ``compliance-sync``, or update it to ``settings``; returns "created" or "updated"."""
    try:
        await client.create_schedule(SCHEDULE_ID, build_sync_schedule(settings, queue_prefix))
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    async def updater(update: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=build_sync_schedule(settings, queue_prefix, update.description.schedule.state))

    await client.get_schedule_handle(SCHEDULE_ID).update(updater)
    return "updated"


async def start_sync(
    client: Client,
    settings: ComplianceSettings,
    *,
    queue_prefix: str = "",
    request: str | None = None,
    only_accounts: list[str] | None = None,
) -> WorkflowHandle[object, ComplianceSyncResult]:
    """Start a sync now (or join the one with the same ``request``); returns its handle.

    ``request`` defaults to the current second (UTC), so a double click starts one run.
    """
    name = request or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    inp = sync_input(settings, queue_prefix)
    inp.only_accounts = list(only_accounts or [])
    return await client.start_workflow(
        WorkflowName.COMPLIANCE_SYNC,
        inp,
        id=manual_workflow_id(name),
        task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix),
        execution_timeout=SYNC_TIMEOUT,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        result_type=ComplianceSyncResult,
    )


async def sync_status(client: Client, workflow_id: str) -> ComplianceSyncStatus:
    return await client.get_workflow_handle(workflow_id).query(QueryName.STATUS, result_type=ComplianceSyncStatus)


async def wait_sync(client: Client, workflow_id: str) -> ComplianceSyncResult:
    return await client.get_workflow_handle(workflow_id, result_type=ComplianceSyncResult).result()

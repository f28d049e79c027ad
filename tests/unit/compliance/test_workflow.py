"""ComplianceSync on the time-skipping server with stub aws-worker activities: every account
synced once, never more than the bound at a time, a failing account reported (the run goes on),
aggregates written at the run's time, progress readable through the status query."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts import taskqueues
from contracts.models import ActivityName
from contracts.compliance import (
    ComplianceSyncInput,
    ComplianceSyncResult,
    ComplianceSyncStatus,
    ListSyncAccountsInput,
    ListSyncAccountsResult,
    RecordAggregatesInput,
    RecordAggregatesResult,
    SyncAccountInput,
    SyncTarget,
)
from contracts.enrollment import AccountRef
from contracts.estate import ApplyResult
from contracts.names import QueryName, WorkflowName
from contracts.providers import WorkerRole
from workflows.compliance import ComplianceSyncWorkflow

ACCOUNTS = [f"2100000{n:05d}" for n in range(7)]
BROKEN = ACCOUNTS[3]


class StubAws:
    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.synced: list[str] = []
        self.taken_at: set[datetime] = set()
        self.aggregated: list[datetime] = []
        self.gate = asyncio.Event()

    @activity.defn(name=ActivityName.LIST_SYNC_ACCOUNTS)
    async def list_accounts(self, inp: ListSyncAccountsInput) -> ListSyncAccountsResult:
        wanted = inp.only_accounts or ACCOUNTS
        return ListSyncAccountsResult(targets=[
            SyncTarget(account=AccountRef(account_id=a, role_arn=f"arn:aws:iam::{a}:role/R"), customer="acme")
            for a in ACCOUNTS if a in wanted])

    @activity.defn(name=ActivityName.SYNC_ACCOUNT_ESTATE)
    async def sync(self, inp: SyncAccountInput) -> ApplyResult:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.gate.wait()
            await asyncio.sleep(0.05)
            account = inp.target.account.account_id
            self.taken_at.add(inp.taken_at)
            if account == BROKEN:
                raise ApplicationError("AccessDenied: no role", type="AwsAccessDenied", non_retryable=True)
            self.synced.append(account)
            return ApplyResult(systems_account=account, instances=10, new=10)
        finally:
            self.running -= 1

    @activity.defn(name=ActivityName.RECORD_COMPLIANCE_AGGREGATES)
    async def aggregates(self, inp: RecordAggregatesInput) -> RecordAggregatesResult:
        self.aggregated.append(inp.at)
        return RecordAggregatesResult(rows=3)


async def test_sync_fans_out_bounded_and_reports_progress(time_skipping_env: WorkflowEnvironment,
                                                          queue_prefix: str) -> None:
    client = time_skipping_env.client
    stub = StubAws()
    aws = Worker(client, task_queue=taskqueues.for_role(WorkerRole.AWS, queue_prefix),
                 activities=[stub.list_accounts, stub.sync, stub.aggregates])
    orchestrator = Worker(client, task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix),
                          workflows=[ComplianceSyncWorkflow])
    async with aws, orchestrator:
        handle = await client.start_workflow(
            WorkflowName.COMPLIANCE_SYNC, ComplianceSyncInput(queue_prefix=queue_prefix, max_concurrent_accounts=2),
            id=f"compliance-sync/manual/{uuid.uuid4()}", task_queue=orchestrator.task_queue,
            result_type=ComplianceSyncResult)
        for _ in range(200):
            status = await handle.query(QueryName.STATUS, result_type=ComplianceSyncStatus)
            if stub.running == 2:
                break
            await asyncio.sleep(0.05)
        assert (status.phase, status.accounts_total, status.accounts_done) == ("syncing", 7, 0)
        stub.gate.set()
        result = await handle.result()
        final = await handle.query(QueryName.STATUS, result_type=ComplianceSyncStatus)

    assert stub.most == 2  # never more than the bound
    assert sorted(stub.synced) == sorted(a for a in ACCOUNTS if a != BROKEN)
    assert (result.status.phase, result.status.accounts_total, result.status.accounts_done) == ("done", 7, 7)
    assert (result.status.accounts_failed, result.status.instances, result.aggregate_rows) == (1, 60, 3)
    failed = [o for o in result.accounts if not o.ok]
    assert [o.systems_account for o in failed] == [BROKEN] and "AccessDenied" in (failed[0].error or "")
    assert [o.systems_account for o in result.accounts] == ACCOUNTS  # listing order
    assert len(stub.taken_at) == 1 and stub.aggregated == [result.status.started_at] == list(stub.taken_at)
    assert final.phase == "done" and final.finished_at is not None


async def test_sync_of_chosen_accounts(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    client = time_skipping_env.client
    stub = StubAws()
    stub.gate.set()
    async with Worker(client, task_queue=taskqueues.for_role(WorkerRole.AWS, queue_prefix),
                      activities=[stub.list_accounts, stub.sync, stub.aggregates]), \
            Worker(client, task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix),
                   workflows=[ComplianceSyncWorkflow]) as orchestrator:
        result = await client.execute_workflow(
            WorkflowName.COMPLIANCE_SYNC,
            ComplianceSyncInput(queue_prefix=queue_prefix, only_accounts=[ACCOUNTS[0]]),
            id=f"compliance-sync/manual/{uuid.uuid4()}", task_queue=orchestrator.task_queue,
            result_type=ComplianceSyncResult)
    assert stub.synced == [ACCOUNTS[0]] and result.status.accounts_total == 1


def test_the_recorded_history_did_its_work() -> None:
    """``record_history`` made a run with the fan-out and a failed account (replayed by
    tests/unit/histories with every other workflow type)."""
    import base64
    import json

    from tests.unit.compliance.record_history import OUT

    events = json.loads(OUT.read_text())["history"]["events"]
    result = json.loads(base64.b64decode(events[-1]["workflowExecutionCompletedEventAttributes"]["result"]["payloads"][0]["data"]))
    assert result["status"]["accounts_done"] == len(ACCOUNTS) and result["status"]["accounts_failed"] == 1
    assert result["aggregate_rows"] == 3


def test_the_recorded_window_ends_with_the_estate_step() -> None:
    import json

    from tests.unit.compliance.record_history import WINDOW_OUT

    events = json.loads(WINDOW_OUT.read_text())["history"]["events"]
    markers = [e for e in events if e.get("markerRecordedEventAttributes", {}).get("markerName") == "core_patch"]
    scheduled = [e["activityTaskScheduledEventAttributes"]["activityType"]["name"] for e in events
                 if "activityTaskScheduledEventAttributes" in e]
    assert markers and scheduled[-1] == "record_window_results"

"""ComplianceSync: fill the estate store from SSM, every systems account.

list the systems accounts -> sync each on the aws worker (at most ``max_concurrent_accounts`` at
a time; an account that fails is reported and left for the next run) -> write the compliance
aggregates (trends). The ``status`` query answers accounts done/total for a progress bar.

Started by the ``compliance-sync`` schedule (every 15 minutes by default) and on demand
(``clients.compliance.start_sync``). One time, ``workflow.now()`` at the start, stamps the run.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from contracts import taskqueues
    from contracts.compliance import (
        AccountSyncOutcome,
        ComplianceActivity,
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
    from contracts.estate import ApplyResult
    from contracts.names import QueryName, WorkflowName
    from contracts.providers import WorkerRole
    from workflows import options
    from workflows.options import ActivityPreset


@workflow.defn(name=WorkflowName.COMPLIANCE_SYNC)
class ComplianceSyncWorkflow:
    def __init__(self) -> None:
        self._status = ComplianceSyncStatus()

    @workflow.query(name=QueryName.STATUS)
    def status(self) -> ComplianceSyncStatus:
        return self._status

    @workflow.run
    async def run(self, inp: ComplianceSyncInput) -> ComplianceSyncResult:
        self._status.started_at = workflow.now()
        listed: ListSyncAccountsResult = await self._aws(
            ComplianceActivity.LIST_ACCOUNTS, ListSyncAccountsInput(only_accounts=inp.only_accounts),
            ListSyncAccountsResult, inp, options.AWS_CONTROL,
        )
        outcomes = await self._sync_accounts(listed.targets, inp)
        self._status.phase = "aggregating"
        aggregates: RecordAggregatesResult = await self._aws(
            ComplianceActivity.RECORD_AGGREGATES, RecordAggregatesInput(at=self._status.started_at),
            RecordAggregatesResult, inp, options.ESTATE_WRITE,
        )
        self._status.phase = "done"
        self._status.finished_at = workflow.now()
        return ComplianceSyncResult(status=self._status, accounts=outcomes, aggregate_rows=aggregates.rows)

    async def _sync_accounts(self, targets: list[SyncTarget], inp: ComplianceSyncInput) -> list[AccountSyncOutcome]:
        """Every account, at most ``max_concurrent_accounts`` at a time, in listing order."""
        self._status.phase = "syncing"
        self._status.accounts_total = len(targets)
        slots = asyncio.Semaphore(max(1, inp.max_concurrent_accounts))

        async def one(target: SyncTarget) -> AccountSyncOutcome:
            async with slots:
                outcome = await self._sync_one(target, inp)
            self._status.accounts_done += 1
            self._status.accounts_failed += 0 if outcome.ok else 1
            self._status.instances += outcome.instances
            return outcome

        return list(await asyncio.gather(*(one(t) for t in targets)))

    async def _sync_one(self, target: SyncTarget, inp: ComplianceSyncInput) -> AccountSyncOutcome:
        account = target.account.account_id
        try:
            applied: ApplyResult = await self._aws(
                ComplianceActivity.SYNC_ACCOUNT, SyncAccountInput(target=target, taken_at=self._status.started_at),
                ApplyResult, inp, options.ESTATE_SYNC,
            )
        except ActivityError as err:
            cause = err.cause or err
            workflow.logger.warning("account sync failed", extra={"systems_account": account, "error": str(cause)})
            return AccountSyncOutcome(systems_account=account, ok=False, error=str(cause)[:500])
        return AccountSyncOutcome(systems_account=account, ok=True, instances=applied.instances,
                                  departed=applied.departed)

    @staticmethod
    async def _aws(name: str, arg: object, result_type: type, inp: ComplianceSyncInput, preset: ActivityPreset):
        return await workflow.execute_activity(
            name, arg, task_queue=taskqueues.for_role(WorkerRole.AWS, inp.queue_prefix),
            result_type=result_type, **preset.kwargs(),
        )

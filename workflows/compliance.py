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
    from contracts.compliance import (
        AccountSyncOutcome,
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
    from contracts.models import ActivityName
    from contracts.names import QueryName, WorkflowName
    from contracts.providers import WorkerRole
    from workflows import options
    from workflows.calls import Calls


@workflow.defn(name=WorkflowName.COMPLIANCE_SYNC)
class ComplianceSyncWorkflow:
    def __init__(self) -> None:
        self._status = ComplianceSyncStatus()
        self._calls = Calls()

    @workflow.query(name=QueryName.STATUS)
    def status(self) -> ComplianceSyncStatus:
        return self._status

    @workflow.run
    async def run(self, inp: ComplianceSyncInput) -> ComplianceSyncResult:
        self._calls = Calls(inp.queue_prefix)
        self._status.started_at = workflow.now()
        listed = await self._calls.activity(
            WorkerRole.AWS, ActivityName.LIST_SYNC_ACCOUNTS, ListSyncAccountsInput(only_accounts=inp.only_accounts),
            ListSyncAccountsResult, options.AWS_CONTROL,
        )
        outcomes = await self._sync_accounts(listed.targets, inp)
        self._status.phase = "aggregating"
        aggregates = await self._calls.activity(
            WorkerRole.AWS, ActivityName.RECORD_COMPLIANCE_AGGREGATES, RecordAggregatesInput(at=self._status.started_at),
            RecordAggregatesResult, options.ESTATE_WRITE,
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
                outcome = await self._sync_one(target)
            self._status.accounts_done += 1
            self._status.accounts_failed += 0 if outcome.ok else 1
            self._status.instances += outcome.instances
            return outcome

        return list(await asyncio.gather(*(one(t) for t in targets)))

    async def _sync_one(self, target: SyncTarget) -> AccountSyncOutcome:
        account = target.account.account_id
        try:
            applied = await self._calls.activity(
                WorkerRole.AWS, ActivityName.SYNC_ACCOUNT_ESTATE,
                SyncAccountInput(target=target, taken_at=self._status.started_at), ApplyResult, options.ESTATE_SYNC,
            )
        except ActivityError as err:
            cause = err.cause or err
            workflow.logger.warning("account sync failed", extra={"systems_account": account, "error": str(cause)})
            return AccountSyncOutcome(systems_account=account, ok=False, error=str(cause)[:500])
        return AccountSyncOutcome(systems_account=account, ok=True, instances=applied.instances,
                                  departed=applied.departed)

"""Contracts of ComplianceSync: the workflow that fills the estate store from SSM.

One run lists the systems accounts (Organizations accounts fleetpatch tagged, plus the customers'
own AWS accounts linked for EC2), syncs each on the aws worker with bounded concurrency (one
``AccountSnapshot`` per account, applied by ``estate.writes.apply_account_snapshot``), then writes
the compliance aggregates for trends. Fields are only ever added, with defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from contracts.enrollment import AccountRef
from contracts.patching import InstanceResult

#: The schedule that runs ComplianceSync (default every 15 minutes).
SCHEDULE_ID = "compliance-sync"
#: Workflow ids: a scheduled run gets the schedule's id plus its start time; an on-demand run
#: ``compliance-sync/manual/{request}`` (see ``manual_workflow_id``).
MANUAL_PREFIX = "compliance-sync/manual/"


def manual_workflow_id(request: str) -> str:
    """The id of an on-demand sync; ``request`` names it (the API passes a timestamp or uuid)."""
    return MANUAL_PREFIX + request


@dataclass
class SyncTarget:
    """One systems account to sync, and whom it serves."""

    account: AccountRef
    customer: str = ""
    provider: str = ""  # gcp | azure | vmware | aws
    cloud_account: str = ""


@dataclass
class ListSyncAccountsInput:
    only_accounts: list[str] = field(default_factory=list)  # empty: every systems account


@dataclass
class ListSyncAccountsResult:
    targets: list[SyncTarget] = field(default_factory=list)


@dataclass
class SyncAccountInput:
    target: SyncTarget
    taken_at: datetime  # the run's clock (workflow.now()): one time for the whole sync


@dataclass
class RecordAggregatesInput:
    at: datetime


@dataclass
class RecordAggregatesResult:
    rows: int = 0


@dataclass
class ComplianceSyncInput:
    queue_prefix: str = ""
    max_concurrent_accounts: int = 8
    only_accounts: list[str] = field(default_factory=list)  # empty: every systems account


@dataclass
class AccountSyncOutcome:
    systems_account: str
    ok: bool
    instances: int = 0
    departed: int = 0
    error: str | None = None


@dataclass
class ComplianceSyncStatus:
    """The ``status`` query: enough for a progress bar."""

    phase: str = "listing"  # listing | syncing | aggregating | done
    accounts_total: int = 0
    accounts_done: int = 0
    accounts_failed: int = 0
    instances: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass
class ComplianceSyncResult:
    status: ComplianceSyncStatus
    accounts: list[AccountSyncOutcome] = field(default_factory=list)
    aggregate_rows: int = 0


@dataclass
class RecordWindowInput:
    """One batch of a PatchWindow run's instance results, for the estate store. The activity
    re-reads the patch state of every instance the run reached, so the store shows each one's
    state after the window."""

    account: AccountRef
    window_workflow_id: str
    run_id: str
    patch_group: str
    outcome: str
    instances: list[InstanceResult] = field(default_factory=list)
    finished: datetime | None = None
    held_os: list[str] = field(default_factory=list)  # the summary's ``held_os``: OSes only scanned for want of an early instance


@dataclass
class RecordWindowResult:
    recorded: int = 0
    refreshed: int = 0  # instances whose patch state was re-read

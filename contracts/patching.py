"""Contracts of patch windows: runs, targets, the patch train, the gate, the summary (one
batch's commands: ``contracts.patch_batches``).

A patch window is a Temporal Schedule per systems account and patch group; each firing runs a
``PatchWindow`` workflow (one account, one group) that fans out to ``PatchBatch`` children.

Rings and the train: ``early`` installs what its baselines approve and records exactly what it
installed, per OS (the patch train). ``on-time`` and ``late`` install exactly that set through
AWS-RunPatchBaseline's ``InstallOverrideList`` (a YAML file in S3 in the systems account), so a
later ring never installs a patch that did not pass ``early`` - also on Ubuntu and Debian, whose
baselines cannot delay approval by days. Each later ring installs the train its predecessor ring
ran, so a new ``early`` run in between does not change what ``late`` gets.

Rings span the customer (``RingScope.CUSTOMER``, the default): a later ring reads the earlier
ring's last run in every systems account of the customer (``RingAccount``), waits while one still
runs, judges them together, and installs one customer train built from their trains and copied
into its own account's bucket (``workflows.ring_gate``, ``workflows.ring_steps``).

Every dataclass crosses the workflow/activity boundary: fields are only ever added with defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from contracts.enrollment import AccountRef
from contracts.patch_config import WindowConfig
from contracts.providers import PatchGroup

#: The rings in promotion order; each later ring is gated by the one before it.
RING_ORDER: tuple[PatchGroup, ...] = (PatchGroup.EARLY, PatchGroup.ON_TIME, PatchGroup.LATE)

#: SendCommand accepts at most 50 instance ids per call.
MAX_INSTANCE_IDS_PER_COMMAND = 50

#: Targets whose platform maps to no OsFamily (a later ring cannot pick a train list for them).
UNKNOWN_OS = "unknown"

DOCUMENT = "AWS-RunPatchBaseline"
DOCUMENT_WITH_HOOKS = "AWS-RunPatchBaselineWithHooks"


def earlier_ring(group: PatchGroup | str) -> PatchGroup | None:
    """The ring whose last run gates ``group`` (None for ``early``)."""
    index = RING_ORDER.index(PatchGroup(group))
    return RING_ORDER[index - 1] if index else None


class WindowOutcome(StrEnum):
    """Values of the WindowOutcome search attribute and of ``WindowSummary.outcome``."""

    RUNNING = "running"
    HELD = "held"  # the promotion gate held the ring (result and memo say why)
    SUCCEEDED = "succeeded"  # every target succeeded
    COMPLETED_WITH_FAILURES = "completed-with-failures"  # all dispatched, some failed
    STOPPED_MAX_ERRORS = "stopped-max-errors"  # more errors than max errors: dispatch stopped
    CUT_OFF = "cut-off"  # the cutoff came before every target was dispatched
    NO_TARGETS = "no-targets"
    REFUSED = "refused"  # the window's configuration cannot be run as asked


class RingScope(StrEnum):
    """How far a ring reaches: every systems account of the customer (one train, one gate), or
    one systems account alone (a link option, ``ring_scope``)."""

    CUSTOMER = "customer"
    ACCOUNT = "account"


#: What a later ring's summary says of an OS it cannot patch without a train (Ubuntu, Debian).
HELD_NO_EARLY = "held: no early instance of this OS"


class Operation(StrEnum):
    SCAN = "Scan"
    INSTALL = "Install"


class InstanceStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  # not started before the cutoff or the error stop; cancelled
    NOT_DISPATCHED = "not-dispatched"  # never sent (cutoff or max errors reached first)
    NOT_DELIVERED = "not-delivered"  # SSM could not deliver it (offline, deregistered)
    IN_PROGRESS = "in-progress"  # still running when the window ended


# --- a run -----------------------------------------------------------------------------------


@dataclass
class PatchWindowInput:
    account: AccountRef
    group: PatchGroup
    customer: str = ""
    config: WindowConfig = field(default_factory=WindowConfig)
    #: Workflow ids of earlier-ring runs an operator released ahead of time
    #: (``fleetpatch windows release`` when no run is waiting).
    gate_releases: list[str] = field(default_factory=list)
    queue_prefix: str = ""
    batch_size: int = 500  # instances per PatchBatch child
    max_parallel_batches: int = 4
    poll_interval_seconds: int = 30
    poll_hold_seconds: int = 300  # a poll activity waits (heartbeating) up to this for a change
    batch_history_limit: int = 4000  # a PatchBatch continues as new beyond this many events


@dataclass
class ReleaseRequest:
    """Signal ``release`` of a held PatchWindow run."""

    by: str = "operator"
    reason: str = ""


@dataclass
class WindowStatus:
    """Query ``status`` of a PatchWindow run: where it stands while it runs (or is held)."""

    outcome: WindowOutcome
    held_reason: str | None = None
    errors: int = 0
    batches_done: int = 0


@dataclass
class TargetQuery:
    account: AccountRef
    group: PatchGroup


@dataclass
class PatchTargets:
    """Online managed instances (hybrid and EC2) with the group's Patch Group tag, by OS."""

    by_os: dict[str, list[str]] = field(default_factory=dict)  # OsFamily value | "unknown" -> ids

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.by_os.values())


@dataclass
class PatchRef:
    """One patch as the instances report it and as an InstallOverrideList names it:
    Windows ``id`` = KB id; Linux ``id`` = ``name.arch``, ``title`` = ``name.arch:version``."""

    id: str
    title: str = ""


@dataclass
class TrainOs:
    os: str
    count: int
    url: str | None = None  # s3://bucket/key of the InstallOverrideList; None when empty


@dataclass
class PatchTrain:
    """What an ``early`` run installed, per OS, as InstallOverrideList files in S3."""

    train_id: str
    recorded_by: str  # the early run's workflow id
    recorded_at: datetime
    per_os: dict[str, TrainOs] = field(default_factory=dict)

    def list_for(self, os: str) -> TrainOs | None:
        return self.per_os.get(os)


@dataclass
class RecordTrainInput:
    account: AccountRef
    train_id: str
    recorded_by: str
    installed: dict[str, list[PatchRef]]  # os -> patches installed during the early run
    failed: dict[str, list[PatchRef]]  # os -> patches that failed on some early instance
    covered_os: list[str] = field(default_factory=list)  # OSes the early run had targets of


@dataclass
class RingRunRecord:
    """The last run of one ring in one systems account (S3): what the next ring's gate reads."""

    group: PatchGroup
    workflow_id: str
    run_id: str
    started: datetime
    finished: datetime
    outcome: WindowOutcome
    targets: int = 0
    succeeded: int = 0
    success_rate: float | None = None  # None: no targets
    train: PatchTrain | None = None  # early: the train it recorded; later: the train it installed
    held_reason: str | None = None


@dataclass
class RingRecordQuery:
    account: AccountRef
    group: PatchGroup


@dataclass
class RingRecordResult:
    record: RingRunRecord | None


@dataclass
class RingAccount:
    """One systems account of a customer as a customer-wide ring sees it: the last run of a ring
    there (None: never ran)."""

    account: AccountRef
    label: str = ""  # provider/cloud account (systems account), for reasons
    record: RingRunRecord | None = None


@dataclass
class CustomerRingQuery:
    """The last runs of ``group`` in every systems account of ``customer`` (``scope`` account:
    in ``account`` alone). ``account`` is always part of the answer."""

    customer: str
    group: PatchGroup
    account: AccountRef
    scope: str = RingScope.CUSTOMER.value


@dataclass
class CustomerRings:
    accounts: list[RingAccount] = field(default_factory=list)


@dataclass
class CustomerTrainInput:
    """Build one train from the trains of ``sources`` (each in its own account's bucket) and
    write it into ``account``'s bucket, where that account's managed instances read it."""

    account: AccountRef
    train_id: str
    recorded_by: str
    sources: list[RingAccount] = field(default_factory=list)


# --- instances -------------------------------------------------------------------------------


@dataclass
class InstanceResult:
    instance_id: str
    os: str
    status: InstanceStatus
    reason: str = ""
    installed: int = 0
    missing: int = 0
    failed: int = 0
    pending_reboot: int = 0
    operation: str = ""


# --- the summary -----------------------------------------------------------------------------


@dataclass
class InstanceFailure:
    instance_id: str
    os: str
    reason: str


@dataclass
class WindowSummary:
    """A PatchWindow run's result. Per-instance rows are included up to a cap; every row is in
    the batch reports in S3 (``report_prefix``)."""

    account_id: str
    group: PatchGroup
    outcome: WindowOutcome
    started: datetime
    finished: datetime
    workflow_id: str = ""
    targets: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    not_dispatched: int = 0
    not_delivered: int = 0
    in_progress: int = 0
    success_rate: float | None = None
    errors: int = 0
    max_errors: int = 0
    max_concurrency: int = 0
    held_reason: str | None = None
    released_by: str | None = None
    train_id: str | None = None
    train: dict[str, int] = field(default_factory=dict)  # os -> patches in the train
    held_os: list[str] = field(default_factory=list)  # OSes scanned only: no early instance, no delay
    notes: list[str] = field(default_factory=list)
    failures: list[InstanceFailure] = field(default_factory=list)
    instances: list[InstanceResult] = field(default_factory=list)
    instances_truncated: bool = False
    report_prefix: str | None = None


@dataclass
class RecordRingRunInput:
    account: AccountRef
    record: RingRunRecord
    summary: WindowSummary


# --- schedules -------------------------------------------------------------------------------


@dataclass
class EnsureWindowsInput:
    """Create (or bring up to date) the three window schedules of one systems account."""

    account: AccountRef
    customer: str
    provider: str = ""
    cloud_account: str = ""
    time_zone: str = "UTC"
    windows: dict[str, Any] = field(default_factory=dict)  # TenantLink.windows
    queue_prefix: str = ""


@dataclass
class EnsureWindowsResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

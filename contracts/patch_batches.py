"""Contracts of one PatchBatch: the SSM commands it sends, polls, cancels and collects, and
the state it carries over continue-as-new.

Every dataclass crosses the workflow/activity boundary: fields are only ever added with defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from contracts.enrollment import AccountRef
from contracts.patch_config import Hooks, RebootOption
from contracts.patching import DOCUMENT, DOCUMENT_WITH_HOOKS, InstanceResult, Operation, PatchRef

# --- batches and commands --------------------------------------------------------------------


@dataclass
class CommandSpec:
    """One SendCommand: at most 50 instances of one OS, one operation."""

    index: int
    key: str  # idempotency key: the window's workflow id, batch and index (also the Comment)
    os: str
    instance_ids: list[str]
    operation: Operation
    document: str = DOCUMENT
    reboot: str = RebootOption.REBOOT_IF_NEEDED.value
    install_override_list: str | None = None
    hooks: Hooks | None = None
    snapshot_id: str = ""  # one per window: every instance patches against the same snapshot
    max_concurrency: str = "50"
    max_errors: str = "0"
    phase: int = 1  # 0: the scan before the install (scan_first)

    def parameters(self) -> dict[str, list[str]]:
        params: dict[str, list[str]] = {"Operation": [self.operation.value], "RebootOption": [self.reboot]}
        if self.snapshot_id:
            params["SnapshotId"] = [self.snapshot_id]
        if self.document == DOCUMENT_WITH_HOOKS and self.hooks is not None:
            params["PreInstallHookDocName"] = [self.hooks.pre_install]
            params["PostInstallHookDocName"] = [self.hooks.post_install]
            params["OnExitHookDocName"] = [self.hooks.on_exit]
        if self.install_override_list and self.document == DOCUMENT:
            params["InstallOverrideList"] = [self.install_override_list]
        return params


@dataclass
class SendCommandInput:
    account: AccountRef
    spec: CommandSpec
    delivery_timeout_seconds: int  # invocations not started by then time out (the cutoff)
    sent_after: datetime  # the window's start: where a retried send looks for its own command


@dataclass
class SentCommand:
    index: int
    command_id: str


@dataclass
class CommandProgress:
    command_id: str
    status: str
    target_count: int = 0
    completed_count: int = 0
    error_count: int = 0

    @property
    def done(self) -> bool:
        return self.status not in ("Pending", "InProgress", "Cancelling")


@dataclass
class PollCommandsInput:
    account: AccountRef
    command_ids: list[str]
    #: Wait (heartbeating) up to this long for a command to finish or an error count to change.
    wait_seconds: int = 0
    known_errors: dict[str, int] = field(default_factory=dict)


@dataclass
class PollCommandsResult:
    progress: list[CommandProgress]


@dataclass
class CancelPendingInput:
    account: AccountRef
    command_ids: list[str]


@dataclass
class CancelPendingResult:
    cancelled: int  # invocations that had not started and were cancelled


@dataclass
class CollectBatchInput:
    account: AccountRef
    window_id: str  # the PatchWindow workflow id: reports go under it
    batch: int
    sent: list[SentCommand]
    specs: list[CommandSpec]
    not_dispatched_reason: str = ""  # for specs never sent
    since: datetime | None = None  # the window's start
    record_patches: bool = False  # early: report each instance's installed and failed patches


@dataclass
class BatchResult:
    batch: int
    instances: list[InstanceResult] = field(default_factory=list)
    installed: dict[str, list[PatchRef]] = field(default_factory=dict)
    failed_patches: dict[str, list[PatchRef]] = field(default_factory=dict)
    errors: int = 0
    report_url: str | None = None


@dataclass
class BatchState:
    """What a PatchBatch carries over continue-as-new."""

    next_index: int = 0
    sent: list[SentCommand] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # command id -> error count
    reported_errors: int = 0
    stop_reason: str | None = None
    cancelled: bool = False


@dataclass
class BatchInput:
    account: AccountRef
    window_id: str
    batch: int
    specs: list[CommandSpec]
    started: datetime  # the window's start
    cutoff_at: datetime
    end_at: datetime
    error_budget: int  # errors this batch may see before it stops (window's max minus known)
    commands_in_flight: int = 1
    record_patches: bool = False
    poll_interval_seconds: int = 30
    poll_hold_seconds: int = 300
    queue_prefix: str = ""
    history_limit: int = 4000
    state: BatchState = field(default_factory=BatchState)


@dataclass
class BatchErrors:
    """Signal ``batch_errors`` a PatchBatch sends its window when its error count grows."""

    batch: int
    errors: int

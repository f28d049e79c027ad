"""Pure planning of a patch window: rate control, batches, commands, the gate, the outcome.

Deterministic functions only (no I/O, no clocks): the PatchWindow workflow calls them, and tests
exercise them directly.

Rate control. ``max_concurrency`` C and ``max_errors`` E are resolved against the window's target
count the way SSM resolves them for one command. The window runs at most P batches at a time
(P = min(max_parallel_batches, ceil(C / 50), batches)); each batch keeps ``c = C // P``
instances in flight: ``max(1, c // 50)`` commands at a time, each with MaxConcurrency
``min(50, c)``. Errors are counted across the window: once more than E invocations failed, no
command is sent any more and invocations that have not started are cancelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts.patch_batches import CommandSpec
from contracts.patching import (
    DOCUMENT,
    DOCUMENT_WITH_HOOKS,
    HELD_NO_EARLY,
    MAX_INSTANCE_IDS_PER_COMMAND,
    UNKNOWN_OS,
    InstanceFailure,
    InstanceResult,
    InstanceStatus,
    Operation,
    PatchRef,
    PatchTargets,
    PatchTrain,
    RingRunRecord,
    WindowOutcome,
    WindowSummary,
    earlier_ring,
)
from contracts.patch_config import WindowConfig, resolve_limit
from contracts.providers import NO_APPROVAL_DELAY, PatchGroup

#: Failures listed in a summary (the batch reports in S3 hold every row).
MAX_FAILURES_IN_SUMMARY = 100
#: Per-instance rows in a summary; larger windows keep them in the S3 reports only.
MAX_INSTANCES_IN_SUMMARY = 1000

#: Why a window (and its batches) stopped dispatching before every target was sent.
STOP_CUTOFF = "cutoff"
STOP_MAX_ERRORS = "max-errors"


@dataclass(frozen=True)
class RateControl:
    targets: int
    max_concurrency: int  # C
    max_errors: int  # E
    parallel_batches: int  # P
    per_batch_in_flight: int  # c
    commands_in_flight: int  # per batch
    command_concurrency: int  # MaxConcurrency of each command


def rate_control(config: WindowConfig, targets: int, batches: int, max_parallel_batches: int) -> RateControl:
    concurrency = resolve_limit(config.max_concurrency, targets, concurrency=True)
    errors = resolve_limit(config.max_errors, targets, concurrency=False)
    parallel = max(1, min(max_parallel_batches, math.ceil(concurrency / MAX_INSTANCE_IDS_PER_COMMAND), batches))
    per_batch = max(1, concurrency // parallel)
    return RateControl(
        targets=targets,
        max_concurrency=concurrency,
        max_errors=errors,
        parallel_batches=parallel,
        per_batch_in_flight=per_batch,
        commands_in_flight=max(1, per_batch // MAX_INSTANCE_IDS_PER_COMMAND),
        command_concurrency=min(MAX_INSTANCE_IDS_PER_COMMAND, per_batch),
    )


def batches_of(targets: PatchTargets, batch_size: int) -> list[list[tuple[str, str]]]:
    """(os, instance id) pairs in a stable order, cut into batches of at most ``batch_size``.
    Batch sizes are multiples of 50 where possible so commands stay full."""
    size = max(MAX_INSTANCE_IDS_PER_COMMAND, (batch_size // MAX_INSTANCE_IDS_PER_COMMAND) * MAX_INSTANCE_IDS_PER_COMMAND)
    ordered = [(os, i) for os in sorted(targets.by_os) for i in sorted(targets.by_os[os])]
    return [ordered[start:start + size] for start in range(0, len(ordered), size)]


@dataclass
class OsPlan:
    """What one OS gets in this run."""

    operation: Operation
    document: str
    override_url: str | None = None
    note: str | None = None
    held: bool = False  # scanned only: no early instance anywhere and no approval delay to follow


class RefusedConfiguration(Exception):
    """The window cannot run as configured (the run ends ``refused`` with this reason)."""


def os_plan(os: str, group: PatchGroup, config: WindowConfig, train: PatchTrain | None) -> OsPlan:
    """Install, and with which list, or scan only: the patch train's rules in one place.

    Later rings install exactly the train of an OS the early ring covered. An OS no early
    instance had follows its baseline's approval delay (``untrained_os`` "baseline", the
    default) where SSM supports one; Ubuntu and Debian have none, so they only scan and are
    reported held until an early instance of that OS exists."""
    hooks_document = DOCUMENT_WITH_HOOKS if config.hooks is not None else DOCUMENT
    if group is PatchGroup.EARLY:
        return OsPlan(Operation.INSTALL, hooks_document)
    entry = train.list_for(os) if train is not None else None
    if entry is not None and entry.count > 0 and entry.url:
        if config.hooks is not None and config.hooks_on_train == "refuse":
            raise RefusedConfiguration(
                "hooks are configured, but AWS-RunPatchBaselineWithHooks cannot take an InstallOverrideList; "
                "set hooks_on_train to 'without-hooks' to install the train without them"
            )
        return OsPlan(Operation.INSTALL, DOCUMENT, override_url=entry.url)
    if entry is not None:
        return OsPlan(Operation.SCAN, DOCUMENT, note=f"{os}: the train holds nothing for {os}; scan only")
    why = (
        f"no {earlier_ring(group).value if earlier_ring(group) else 'earlier'} train"
        if train is None else f"the early ring had no {os} instances"
    )
    if config.untrained_os == "baseline" and os not in NO_APPROVAL_DELAY and os != UNKNOWN_OS:
        return OsPlan(Operation.INSTALL, hooks_document, note=f"{os}: {why}; installing what the {group.value} baseline approves")
    if os in NO_APPROVAL_DELAY:
        return OsPlan(Operation.SCAN, DOCUMENT, note=f"{os}: {HELD_NO_EARLY} ({why}); scan only", held=True)
    return OsPlan(Operation.SCAN, DOCUMENT, note=f"{os}: {why}; scan only")


def command_specs(
    batch: list[tuple[str, str]],
    *,
    batch_index: int,
    window_id: str,
    plans: dict[str, OsPlan],
    config: WindowConfig,
    rates: RateControl,
    snapshot_id: str,
) -> list[CommandSpec]:
    """SendCommand requests for one batch: per OS, chunks of at most 50; scans first if asked."""
    by_os: dict[str, list[str]] = {}
    for os, instance in batch:
        by_os.setdefault(os, []).append(instance)
    specs: list[CommandSpec] = []
    phases = [0, 1] if config.scan_first else [1]
    for phase in phases:
        for os in sorted(by_os):
            plan = plans[os]
            if phase == 0 and plan.operation is Operation.SCAN:
                continue  # it only scans anyway
            ids = by_os[os]
            for start in range(0, len(ids), MAX_INSTANCE_IDS_PER_COMMAND):
                index = len(specs)
                specs.append(
                    CommandSpec(
                        index=index,
                        key=f"{window_id}/b{batch_index}/c{index}",
                        os=os,
                        instance_ids=ids[start:start + MAX_INSTANCE_IDS_PER_COMMAND],
                        operation=Operation.SCAN if phase == 0 else plan.operation,
                        document=DOCUMENT if phase == 0 else plan.document,
                        reboot=config.reboot,
                        install_override_list=plan.override_url if phase == 1 else None,
                        hooks=config.hooks if (phase == 1 and plan.document == DOCUMENT_WITH_HOOKS) else None,
                        snapshot_id=snapshot_id,
                        max_concurrency=str(rates.command_concurrency),
                        phase=phase,
                    )
                )
    return specs


# --- the gate ---------------------------------------------------------------------------------


@dataclass
class GateDecision:
    holds: bool
    reason: str
    earlier_run: str  # the workflow id a release names ("none" when there is no earlier run)


def judge_gate(group: PatchGroup, record: RingRunRecord | None, threshold: float, releases: list[str]) -> GateDecision:
    """Hold a later ring unless the earlier ring's last run reached the threshold (or an
    operator released that very run)."""
    earlier = earlier_ring(group)
    if earlier is None:
        return GateDecision(False, "early is never gated", "")
    if record is None:
        decision = GateDecision(True, f"no {earlier.value} run is recorded for this account", "none")
    elif record.outcome is WindowOutcome.HELD:
        decision = GateDecision(
            True, f"the {earlier.value} ring's last run ({record.workflow_id}) was held itself: {record.held_reason}",
            record.workflow_id,
        )
    elif record.success_rate is None:
        decision = GateDecision(False, f"the {earlier.value} ring's last run had no targets", record.workflow_id)
    elif record.success_rate < threshold:
        decision = GateDecision(
            True,
            f"the {earlier.value} ring's last run ({record.workflow_id}) succeeded on {record.success_rate:.1%} "
            f"of {record.targets} instances, below the {threshold:.0%} threshold",
            record.workflow_id,
        )
    else:
        decision = GateDecision(
            False, f"the {earlier.value} ring's last run succeeded on {record.success_rate:.1%}", record.workflow_id
        )
    if decision.holds and decision.earlier_run in releases:
        return GateDecision(False, f"released by an operator: {decision.reason}", decision.earlier_run)
    return decision


# --- the clock --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowClock:
    """When the window opened, when it stops dispatching (the cutoff) and when it ends."""

    started: datetime
    cutoff_at: datetime
    end_at: datetime


def window_clock(config: WindowConfig, now: datetime, scheduled: datetime | None) -> WindowClock:
    """The window opens at its scheduled time when the run starts within the dispatch part of it
    (normal and catch-up runs); a backfill or a manual trigger opens a window ``now``."""
    started = now
    if scheduled is not None and timedelta(0) <= now - scheduled <= timedelta(minutes=config.cutoff_offset_minutes):
        started = scheduled
    end_at = started + timedelta(minutes=config.duration_minutes)
    return WindowClock(started=started, cutoff_at=end_at - timedelta(minutes=config.cutoff_minutes), end_at=end_at)


# --- results ----------------------------------------------------------------------------------


@dataclass
class Tally:
    instances: list[InstanceResult] = field(default_factory=list)
    installed: dict[str, dict[tuple[str, str], PatchRef]] = field(default_factory=dict)
    failed_patches: dict[str, dict[tuple[str, str], PatchRef]] = field(default_factory=dict)

    def add(self, rows: list[InstanceResult], installed: dict[str, list[PatchRef]], failed: dict[str, list[PatchRef]]) -> None:
        self.instances.extend(rows)
        for target, source in ((self.installed, installed), (self.failed_patches, failed)):
            for os, patches in source.items():
                bucket = target.setdefault(os, {})
                for patch in patches:
                    bucket.setdefault((patch.id, patch.title), patch)

    def count(self, status: InstanceStatus) -> int:
        return sum(1 for row in self.instances if row.status is status)

    def patches(self, which: str) -> dict[str, list[PatchRef]]:
        source = self.installed if which == "installed" else self.failed_patches
        return {os: sorted(found.values(), key=lambda p: (p.id, p.title)) for os, found in sorted(source.items())}

    def failures(self) -> list[InstanceFailure]:
        failed = [row for row in self.instances if row.status is InstanceStatus.FAILED]
        failed.sort(key=lambda r: r.instance_id)
        return [InstanceFailure(r.instance_id, r.os, r.reason) for r in failed[:MAX_FAILURES_IN_SUMMARY]]


def success_rate(succeeded: int, targets: int) -> float | None:
    """Instances that succeeded over every target (not dispatched, cancelled and undelivered
    count against it): the gate promotes only what most of the ring really ran."""
    return None if targets == 0 else succeeded / targets


def outcome_of(tally: Tally, targets: int, stop_reason: str | None) -> WindowOutcome:
    if targets == 0:
        return WindowOutcome.NO_TARGETS
    if stop_reason == STOP_MAX_ERRORS:
        return WindowOutcome.STOPPED_MAX_ERRORS
    if tally.count(InstanceStatus.NOT_DISPATCHED) or tally.count(InstanceStatus.CANCELLED) or stop_reason == STOP_CUTOFF:
        return WindowOutcome.CUT_OFF
    if tally.count(InstanceStatus.SUCCEEDED) == targets:
        return WindowOutcome.SUCCEEDED
    return WindowOutcome.COMPLETED_WITH_FAILURES


# --- the summary ------------------------------------------------------------------------------


def not_dispatched(tally: Tally, batches: list[list[tuple[str, str]]], stop_reason: str) -> None:
    """Count the instances of batches never started as not dispatched, saying why."""
    reason = "max errors reached" if stop_reason == STOP_MAX_ERRORS else "the cutoff came"
    for batch in batches:
        tally.add([InstanceResult(i, os, InstanceStatus.NOT_DISPATCHED, f"{reason} before it was dispatched")
                   for os, i in batch], {}, {})


def show_train(summary: WindowSummary, train: PatchTrain) -> None:
    summary.train_id = train.train_id
    summary.train = {os: entry.count for os, entry in sorted(train.per_os.items())}


def summarise(summary: WindowSummary, tally: Tally, targets: int, errors: int, report_prefix: str | None) -> None:
    """Fill the summary's counts, rate, failures and (up to a cap) per-instance rows."""
    summary.succeeded = tally.count(InstanceStatus.SUCCEEDED)
    summary.failed = tally.count(InstanceStatus.FAILED)
    summary.cancelled = tally.count(InstanceStatus.CANCELLED)
    summary.not_dispatched = tally.count(InstanceStatus.NOT_DISPATCHED)
    summary.not_delivered = tally.count(InstanceStatus.NOT_DELIVERED)
    summary.in_progress = tally.count(InstanceStatus.IN_PROGRESS)
    summary.success_rate = success_rate(summary.succeeded, targets)
    summary.errors = errors
    summary.failures = tally.failures()
    rows = sorted(tally.instances, key=lambda r: r.instance_id)
    summary.instances_truncated = len(rows) > MAX_INSTANCES_IN_SUMMARY
    summary.instances = rows[:MAX_INSTANCES_IN_SUMMARY] if not summary.instances_truncated else []
    summary.report_prefix = report_prefix


def summary_memo(summary: WindowSummary) -> dict:
    """The run's memo: what the Temporal UI shows of the summary."""
    return {"summary": {
        "outcome": summary.outcome.value, "targets": summary.targets, "succeeded": summary.succeeded,
        "failed": summary.failed, "not_dispatched": summary.not_dispatched, "cancelled": summary.cancelled,
        "success_rate": summary.success_rate, "held_reason": summary.held_reason, "train": summary.train,
        "notes": summary.notes[:10], "held_os": summary.held_os,
    }}

"""Patch-window activities (aws worker): targets, commands, polling, cancellation, collection,
the patch train and the ring records.

Synchronous (boto3) methods on the worker's thread pool; long ones heartbeat. Every SSM call is
paced per systems account by ``RateLimiter`` (shared by all threads of the worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from temporalio import activity

from clouds.aws.customer_accounts import CustomerAccounts
from clouds.aws.patch_train import PatchTrainStore
from clouds.aws.sessions import AwsSessions
from clouds.aws.ssm_commands import READ, SEND, RateLimiter, SsmCommands, classify, whole_second
from config.settings import AwsSettings, PatchingSettings
from contracts.enrollment import AccountRef
from contracts.models import ActivityName
from contracts.patch_batches import (
    BatchResult,
    CancelPendingInput,
    CancelPendingResult,
    CollectBatchInput,
    PollCommandsInput,
    PollCommandsResult,
    SendCommandInput,
    SentCommand,
)
from contracts.patching import (
    CustomerRingQuery,
    CustomerRings,
    CustomerTrainInput,
    InstanceResult,
    InstanceStatus,
    Operation,
    PatchRef,
    PatchTargets,
    PatchTrain,
    RecordRingRunInput,
    RecordTrainInput,
    RingAccount,
    RingRecordQuery,
    RingScope,
    RingRecordResult,
    TargetQuery,
)

#: How often a waiting poll asks SSM again.
POLL_EVERY_SECONDS = 15.0
#: Failed patch ids named in a failure reason.
FAILED_PATCHES_IN_REASON = 5


class PatchingActivities:
    def __init__(
        self,
        aws: AwsSettings,
        patching: PatchingSettings,
        sessions: AwsSessions | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        sessions = sessions or AwsSessions(aws)
        limiter = limiter or RateLimiter({SEND: patching.send_per_second, READ: patching.read_per_second})
        self._ssm = SsmCommands(sessions, limiter)
        self._store = PatchTrainStore(sessions, patching.bucket)
        self._customers = CustomerAccounts(sessions, aws)
        self._sleep = sleep
        self._clock = clock

    def all(self) -> list:
        return [
            self.resolve_patch_targets,
            self.send_patch_command,
            self.poll_patch_commands,
            self.cancel_pending_invocations,
            self.collect_patch_batch,
            self.read_ring_record,
            self.record_ring_run,
            self.record_patch_train,
            self.read_customer_rings,
            self.copy_customer_train,
        ]

    @activity.defn(name=ActivityName.RESOLVE_PATCH_TARGETS)
    def resolve_patch_targets(self, query: TargetQuery) -> PatchTargets:
        return PatchTargets(by_os=self._ssm.targets(query.account, query.group.value, on_page=_heartbeat))

    @activity.defn(name=ActivityName.SEND_PATCH_COMMAND)
    def send_patch_command(self, inp: SendCommandInput) -> SentCommand:
        command_id = self._ssm.send(
            inp.account, inp.spec, delivery_timeout_seconds=inp.delivery_timeout_seconds,
            sent_after=inp.sent_after, retrying=activity.info().attempt > 1,
        )
        activity.logger.info("patch command sent", extra={"command_id": command_id, "key": inp.spec.key,
                                                          "instances": len(inp.spec.instance_ids)})
        return SentCommand(index=inp.spec.index, command_id=command_id)

    @activity.defn(name=ActivityName.POLL_PATCH_COMMANDS)
    def poll_patch_commands(self, inp: PollCommandsInput) -> PollCommandsResult:
        """Answers at once when a command finished or an error count moved, else waits
        (heartbeating) up to ``wait_seconds`` for that to happen."""
        deadline = self._clock() + inp.wait_seconds
        while True:
            progress = self._ssm.progress(inp.account, inp.command_ids)
            changed = any(p.done or p.error_count != inp.known_errors.get(p.command_id, 0) for p in progress)
            remaining = deadline - self._clock()
            if changed or remaining <= 0:
                return PollCommandsResult(progress=progress)
            _heartbeat(f"{sum(p.completed_count for p in progress)} invocations complete")
            self._sleep(min(POLL_EVERY_SECONDS, remaining))

    @activity.defn(name=ActivityName.CANCEL_PENDING_INVOCATIONS)
    def cancel_pending_invocations(self, inp: CancelPendingInput) -> CancelPendingResult:
        return CancelPendingResult(cancelled=sum(self._ssm.cancel_pending(inp.account, c) for c in inp.command_ids))

    @activity.defn(name=ActivityName.COLLECT_PATCH_BATCH)
    def collect_patch_batch(self, inp: CollectBatchInput) -> BatchResult:
        """Every instance of the batch: its last command's outcome, its patch state, and on the
        early ring the patches it installed and failed during this window."""
        rows: dict[str, InstanceResult] = {}
        errors = 0
        sent = {s.index: s.command_id for s in inp.sent}
        for spec in sorted(inp.specs, key=lambda s: (s.phase, s.index)):
            command_id = sent.get(spec.index)
            if command_id is None:
                for instance in spec.instance_ids:
                    if instance not in rows or rows[instance].status is InstanceStatus.SUCCEEDED:
                        rows[instance] = InstanceResult(instance, spec.os, InstanceStatus.NOT_DISPATCHED,
                                                        inp.not_dispatched_reason, operation=spec.operation.value)
                continue
            for invocation in self._ssm.invocations(inp.account, command_id):
                status, reason = classify(invocation)
                errors += status is InstanceStatus.FAILED
                rows[invocation.instance_id] = InstanceResult(invocation.instance_id, spec.os, status, reason,
                                                              operation=spec.operation.value)
            _heartbeat(f"command {spec.index}")
        result = BatchResult(batch=inp.batch, errors=errors)
        reached = [i for i, r in rows.items() if r.status not in (InstanceStatus.NOT_DISPATCHED, InstanceStatus.CANCELLED)]
        states = self._ssm.patch_states(inp.account, sorted(reached))
        for instance, state in states.items():
            self._apply_state(inp, rows[instance], state)
        if inp.record_patches:
            self._record_patches(inp, rows, result)
        result.instances = [rows[i] for i in sorted(rows)]
        result.report_url = self._store.write_report(inp.account, inp.window_id, inp.batch, result.instances)
        return result

    def _apply_state(self, inp: CollectBatchInput, row: InstanceResult, state: dict) -> None:
        row.installed = int(state.get("InstalledCount", 0))
        row.missing = int(state.get("MissingCount", 0))
        row.failed = int(state.get("FailedCount", 0))
        row.pending_reboot = int(state.get("InstalledPendingRebootCount", 0))
        started = state.get("OperationStartTime")
        this_window = inp.since is None or (started is not None and started >= whole_second(inp.since))
        if row.status is InstanceStatus.SUCCEEDED and row.failed and this_window and row.operation == Operation.INSTALL.value:
            _, failed = self._ssm.patches_since(inp.account, row.instance_id, inp.since)
            names = ", ".join(p.id for p in failed[:FAILED_PATCHES_IN_REASON])
            row.status = InstanceStatus.FAILED
            row.reason = f"{row.failed} patches failed to install" + (f": {names}" if names else "")

    def _record_patches(self, inp: CollectBatchInput, rows: dict[str, InstanceResult], result: BatchResult) -> None:
        installed: dict[str, dict[tuple[str, str], PatchRef]] = {}
        failed: dict[str, dict[tuple[str, str], PatchRef]] = {}
        for instance, row in sorted(rows.items()):
            if row.operation != Operation.INSTALL.value or row.status in (
                InstanceStatus.NOT_DISPATCHED, InstanceStatus.CANCELLED, InstanceStatus.NOT_DELIVERED
            ):
                continue
            got, lost = self._ssm.patches_since(inp.account, instance, inp.since)
            for target, patches in ((installed, got), (failed, lost)):
                bucket = target.setdefault(row.os, {})
                for patch in patches:
                    bucket.setdefault((patch.id, patch.title), patch)
            _heartbeat(instance)
        result.installed = {os: [found[k] for k in sorted(found)] for os, found in sorted(installed.items())}
        result.failed_patches = {os: [found[k] for k in sorted(found)] for os, found in sorted(failed.items())}

    # --- the train and the ring records ------------------------------------------------------

    @activity.defn(name=ActivityName.READ_RING_RECORD)
    def read_ring_record(self, query: RingRecordQuery) -> RingRecordResult:
        return RingRecordResult(record=self._store.ring_record(query.account, query.group))

    @activity.defn(name=ActivityName.RECORD_RING_RUN)
    def record_ring_run(self, inp: RecordRingRunInput) -> None:
        self._store.record_ring_run(inp.account, inp.record, inp.summary)

    @activity.defn(name=ActivityName.RECORD_PATCH_TRAIN)
    def record_patch_train(self, inp: RecordTrainInput) -> PatchTrain:
        return self._store.record_train(
            inp.account, train_id=inp.train_id, recorded_by=inp.recorded_by,
            installed=inp.installed, failed=inp.failed, covered_os=inp.covered_os,
        )

    @activity.defn(name=ActivityName.READ_CUSTOMER_RINGS)
    def read_customer_rings(self, query: CustomerRingQuery) -> CustomerRings:
        """The last run of ``query.group`` in every systems account of the customer (the asking
        account first found under its link's label, and always included)."""
        accounts: dict[str, tuple[AccountRef, str]] = {query.account.account_id: (query.account, "")}
        if query.scope == RingScope.CUSTOMER.value and query.customer:
            for ref, label in self._customers.of(query.customer, query.account.region):
                own = ref.account_id == query.account.account_id
                accounts[ref.account_id] = (query.account if own else ref, label)
        rings = [RingAccount(ref, label, self._store.ring_record(ref, query.group))
                 for _, (ref, label) in sorted(accounts.items())]
        return CustomerRings(accounts=rings)

    @activity.defn(name=ActivityName.COPY_CUSTOMER_TRAIN)
    def copy_customer_train(self, inp: CustomerTrainInput) -> PatchTrain:
        sources = [(s.account, s.record.train) for s in inp.sources if s.record is not None and s.record.train is not None]
        return self._store.copy_customer_train(inp.account, train_id=inp.train_id, recorded_by=inp.recorded_by,
                                               sources=sources)


def _heartbeat(*details: object) -> None:
    if activity.in_activity():
        activity.heartbeat(*details)

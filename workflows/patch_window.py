"""PatchWindow: one window of one systems account and patch group (a schedule's action).

gate (later rings: the earlier ring's last run must have reached the success threshold, or an
operator releases it) -> resolve targets -> plan per OS (early: what its baselines approve;
later rings: exactly the patch train via InstallOverrideList) -> PatchBatch children (at most
``parallel_batches`` at a time, window-wide error budget, cutoff) -> early records the train ->
the ring's record (what the next ring's gate reads) -> its instances' results into the estate
store -> the summary as result, search attribute ``WindowOutcome`` and memo.

History stays bounded at any fleet size: the parent holds one child per batch (500 instances by
default); the children continue as new before their histories grow long.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts.compliance import RecordWindowInput, RecordWindowResult
    from contracts.models import ActivityName
    from contracts.names import QueryName, SignalName, WorkflowName
    from contracts.patch_batches import BatchErrors, BatchInput, BatchResult
    from contracts.patch_config import WindowConfigError, validate_window_config
    from contracts.patching import (
        InstanceResult,
        InstanceStatus,
        PatchTargets,
        PatchTrain,
        PatchWindowInput,
        RecordRingRunInput,
        RecordTrainInput,
        ReleaseRequest,
        RingRecordQuery,
        RingRecordResult,
        RingRunRecord,
        TargetQuery,
        WindowOutcome,
        WindowStatus,
        WindowSummary,
        earlier_ring,
    )
    from contracts.providers import PatchGroup, WorkerRole
    from workflows import options
    from workflows.calls import Calls, wait_until
    from workflows.patch_batch import PatchBatchWorkflow
    from workflows.ring_gate import judge_ring_gate
    from workflows.ring_steps import CUSTOMER_RINGS, customer_train, mark_running, marks_running, wait_for_earlier
    from workflows.patch_plan import (
        STOP_CUTOFF,
        STOP_MAX_ERRORS,
        GateDecision,
        OsPlan,
        RateControl,
        RefusedConfiguration,
        Tally,
        batches_of,
        command_specs,
        WindowClock,
        judge_gate,
        not_dispatched,
        os_plan,
        outcome_of,
        rate_control,
        show_train,
        success_rate,
        summarise,
        summary_memo,
        window_clock,
    )
    from workflows.shared import application_error, upsert


#: Runs recorded before this step existed replay without it.
ESTATE_STEP = "record-window-results-in-estate"

#: Set by Temporal on every workflow a schedule starts: the time the window was planned for.
SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")

Batch = list[tuple[str, str]]  # (os, instance id) of one PatchBatch


@workflow.defn(name=WorkflowName.PATCH_WINDOW)
class PatchWindowWorkflow:
    def __init__(self) -> None:
        self._release: ReleaseRequest | None = None
        self._batch_errors: dict[int, int] = {}
        self._results: dict[int, BatchResult] = {}
        self._failed_batches: dict[int, str] = {}
        self._outcome = WindowOutcome.RUNNING
        self._held_reason: str | None = None
        self._report_prefix: str | None = None
        self._tasks: list[asyncio.Task] = []
        self._calls = Calls()

    # --- operators ---------------------------------------------------------------------------

    @workflow.signal(name=SignalName.RELEASE)
    def release(self, request: ReleaseRequest) -> None:
        """Let a held run proceed (``fleetpatch windows release``)."""
        if self._release is None:
            self._release = request

    @workflow.signal(name=SignalName.BATCH_ERRORS)
    def batch_errors(self, report: BatchErrors) -> None:
        self._batch_errors[report.batch] = max(report.errors, self._batch_errors.get(report.batch, 0))

    @workflow.query(name=QueryName.STATUS)
    def status(self) -> WindowStatus:
        return WindowStatus(
            outcome=self._outcome,
            held_reason=self._held_reason,
            errors=self._errors(),
            batches_done=len(self._results) + len(self._failed_batches),
        )

    # --- the run -----------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: PatchWindowInput) -> WindowSummary:
        self._calls = Calls(inp.queue_prefix)
        scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_START)
        clock = window_clock(inp.config, workflow.now(), scheduled)
        summary = self._open(inp, clock)
        try:
            validate_window_config(inp.config, inp.group)
        except WindowConfigError as err:
            return await self._finish(inp, summary, WindowOutcome.REFUSED, None, note=str(err))
        if marks_running(inp.group):
            await mark_running(self._calls, inp, summary)
        train, holds = await self._pass_gate(inp, summary, clock)
        if holds:
            return await self._finish(inp, summary, WindowOutcome.HELD, train)
        if train is not None:
            show_train(summary, train)
        targets = await self._resolve_targets(inp, summary)
        if targets.total == 0:
            return await self._finish(inp, summary, WindowOutcome.NO_TARGETS, train)
        batches = batches_of(targets, inp.batch_size)
        rates = rate_control(inp.config, targets.total, len(batches), inp.max_parallel_batches)
        summary.max_concurrency, summary.max_errors = rates.max_concurrency, rates.max_errors
        try:
            plans = {os: os_plan(os, inp.group, inp.config, train) for os in sorted(targets.by_os)}
        except RefusedConfiguration as err:
            return await self._finish(inp, summary, WindowOutcome.REFUSED, train, note=str(err))
        summary.notes += [plan.note for plan in plans.values() if plan.note]
        summary.held_os = sorted(os for os, plan in plans.items() if plan.held)
        tally = Tally()
        stop_reason = await self._run_batches(inp, batches, plans, rates, tally, clock)
        if inp.group is PatchGroup.EARLY:
            train = await self._record_train(inp, tally, targets)
            show_train(summary, train)
        summarise(summary, tally, targets.total, self._errors(), self._report_prefix)
        return await self._finish(inp, summary, outcome_of(tally, targets.total, stop_reason), train)

    # --- steps -------------------------------------------------------------------------------

    def _open(self, inp: PatchWindowInput, clock: WindowClock) -> WindowSummary:
        """Search attributes of the run, and its summary so far."""
        attributes = [sa.SYSTEMS_ACCOUNT.value_set(inp.account.account_id), sa.PATCH_GROUP.value_set(inp.group.value)]
        if inp.customer:
            attributes.append(sa.CUSTOMER.value_set(inp.customer))
        upsert(*attributes)
        self._set_outcome(WindowOutcome.RUNNING)
        return WindowSummary(
            account_id=inp.account.account_id, group=inp.group, outcome=WindowOutcome.RUNNING,
            started=clock.started, finished=clock.started, workflow_id=workflow.info().workflow_id,
        )

    async def _pass_gate(self, inp: PatchWindowInput, summary: WindowSummary, clock: WindowClock) -> tuple[PatchTrain | None, bool]:
        """Later rings: the earlier ring's last run must have passed, or an operator releases this
        one. The train to install, and whether the ring holds."""
        earlier = earlier_ring(inp.group)
        if earlier is None:
            return None, False
        if workflow.patched(CUSTOMER_RINGS):
            train, gate = await self._judge_rings(inp, clock)
        else:
            query = RingRecordQuery(account=inp.account, group=earlier)
            found = await self._calls.activity(
                WorkerRole.AWS, ActivityName.READ_RING_RECORD,
                query, RingRecordResult, options.SSM_CALL,
            )
            train = found.record.train if found.record else None
            gate = judge_gate(inp.group, found.record, inp.config.success_threshold, inp.gate_releases)
        summary.notes.append(f"gate: {gate.reason}")
        if gate.holds and not await self._held(gate.reason, clock.cutoff_at):
            summary.held_reason = gate.reason
            return train, True
        if self._release is not None:
            summary.released_by = self._release.by
            summary.notes.append(f"released by {self._release.by}: {self._release.reason or 'no reason given'}")
        self._set_outcome(WindowOutcome.RUNNING)
        return train, False

    async def _judge_rings(self, inp: PatchWindowInput, clock: WindowClock) -> tuple[PatchTrain | None, GateDecision]:
        """The earlier ring of the whole customer (or of this account, with ring scope
        ``account``): once it ended in every account, its runs judged together; the train built
        from them."""
        rings, waited = await wait_for_earlier(self._calls, inp, clock.cutoff_at, lambda: self._release is not None)
        train = await customer_train(self._calls, inp, rings)
        gate = judge_ring_gate(inp.group, rings, inp.config.success_threshold, inp.gate_releases,
                               customer=inp.customer if inp.config.ring_scope == "customer" else "",
                               waited_minutes=waited)
        return train, GateDecision(gate.holds, gate.reason, ",".join(gate.blamed))

    async def _held(self, reason: str, cutoff_at: datetime) -> bool:
        """Hold until an operator releases this run or the cutoff passes. True when released."""
        self._held_reason = reason
        self._set_outcome(WindowOutcome.HELD)
        workflow.upsert_memo({"held_reason": reason})
        remaining = cutoff_at - workflow.now()
        if remaining > timedelta(0):
            await wait_until(lambda: self._release is not None, remaining)
        if self._release is None:
            return False
        workflow.upsert_memo({"held_reason": None, "released_by": self._release.by})
        return True

    async def _resolve_targets(self, inp: PatchWindowInput, summary: WindowSummary) -> PatchTargets:
        """Online managed instances with this ring's Patch Group, by OS."""
        query = TargetQuery(account=inp.account, group=inp.group)
        targets = await self._calls.activity(
            WorkerRole.AWS, ActivityName.RESOLVE_PATCH_TARGETS,
            query, PatchTargets, options.SSM_SWEEP,
        )
        summary.targets = targets.total
        return targets

    async def _run_batches(
        self, inp: PatchWindowInput, batches: list[Batch], plans: dict[str, OsPlan], rates: RateControl,
        tally: Tally, clock: WindowClock,
    ) -> str | None:
        """PatchBatch children, at most ``parallel_batches`` at a time, until all are done or the
        window stops (error budget spent, cutoff). Why it stopped, or None."""
        window_id = workflow.info().workflow_id
        snapshot_id = str(workflow.uuid4())
        pending = list(range(len(batches)))
        running: dict[int, workflow.ChildWorkflowHandle] = {}
        stop_reason: str | None = None
        stopped_children: set[int] = set()
        while pending or running:
            if stop_reason is None:
                stop_reason = self._stop_due(rates, clock)
            if stop_reason is not None:
                await self._stop_children(running, stopped_children, stop_reason)
                not_dispatched(tally, [batches[i] for i in pending], stop_reason)
                pending = []
            while stop_reason is None and pending and len(running) < rates.parallel_batches:
                index = pending.pop(0)
                specs = command_specs(batches[index], batch_index=index, window_id=window_id, plans=plans,
                                      config=inp.config, rates=rates, snapshot_id=snapshot_id)
                running[index] = await self._start_batch(inp, index, specs, rates, clock, window_id)
            if not running:
                break
            await self._await_batches(running, rates, clock, stopping=stop_reason is not None)
            for index in [i for i in running if self._settled(i)]:
                del running[index]
                self._tally_batch(tally, index, batches[index])
        return stop_reason

    def _stop_due(self, rates: RateControl, clock: WindowClock) -> str | None:
        if self._errors() > rates.max_errors:
            return STOP_MAX_ERRORS
        if workflow.now() >= clock.cutoff_at:
            return STOP_CUTOFF
        return None

    @staticmethod
    async def _stop_children(running: dict[int, workflow.ChildWorkflowHandle], stopped: set[int], reason: str) -> None:
        """Tell every running batch (once) to send nothing more."""
        for index, handle in running.items():
            if index not in stopped:
                stopped.add(index)
                await handle.signal(PatchBatchWorkflow.stop, reason)

    async def _await_batches(
        self, running: dict[int, workflow.ChildWorkflowHandle], rates: RateControl, clock: WindowClock, *, stopping: bool
    ) -> None:
        """Until a running batch settles, the error budget is spent or the cutoff comes."""
        timeout = None if stopping else clock.cutoff_at - workflow.now()
        await wait_until(
            lambda: any(self._settled(i) for i in running) or (not stopping and self._errors() > rates.max_errors),
            timeout if timeout is None or timeout > timedelta(0) else options.MIN_WAIT,
        )

    async def _start_batch(
        self, inp: PatchWindowInput, index: int, specs: list, rates: RateControl, clock: WindowClock, window_id: str,
    ) -> workflow.ChildWorkflowHandle:
        batch = BatchInput(
            account=inp.account, window_id=window_id, batch=index, specs=specs, started=clock.started,
            cutoff_at=clock.cutoff_at, end_at=clock.end_at, error_budget=max(0, rates.max_errors - self._errors()),
            commands_in_flight=rates.commands_in_flight, record_patches=inp.group is PatchGroup.EARLY,
            poll_interval_seconds=inp.poll_interval_seconds, poll_hold_seconds=inp.poll_hold_seconds,
            queue_prefix=inp.queue_prefix, history_limit=inp.batch_history_limit,
        )
        handle = await self._calls.start_child(
            PatchBatchWorkflow.run, batch, id=f"{window_id}/batch-{index:04d}", preset=options.BATCH_CHILD
        )

        async def settle() -> None:
            try:
                self._results[index] = await handle
            except ChildWorkflowError as err:
                self._failed_batches[index] = application_error(err).message

        self._tasks.append(asyncio.create_task(settle()))
        return handle

    def _settled(self, index: int) -> bool:
        return index in self._results or index in self._failed_batches

    def _tally_batch(self, tally: Tally, index: int, batch: Batch) -> None:
        result = self._results.get(index)
        if result is None:
            reason = f"batch {index} failed: {self._failed_batches.get(index, 'unknown error')}"
            tally.add([InstanceResult(i, os, InstanceStatus.FAILED, reason) for os, i in batch], {}, {})
            return
        self._batch_errors[index] = max(self._batch_errors.get(index, 0), result.errors)
        tally.add(result.instances, result.installed, result.failed_patches)
        if result.report_url:
            self._report_prefix = result.report_url.rsplit("/", 1)[0] + "/"

    def _errors(self) -> int:
        return sum(self._batch_errors.values())

    async def _record_train(self, inp: PatchWindowInput, tally: Tally, targets: PatchTargets) -> PatchTrain:
        """Early: exactly what it installed, per OS, is the train the later rings install."""
        info = workflow.info()
        record = RecordTrainInput(
            account=inp.account, train_id=info.run_id, recorded_by=info.workflow_id,
            installed=tally.patches("installed"), failed=tally.patches("failed"), covered_os=sorted(targets.by_os),
        )
        return await self._calls.activity(
            WorkerRole.AWS, ActivityName.RECORD_PATCH_TRAIN,
            record, PatchTrain, options.SSM_CALL,
        )

    async def _finish(
        self, inp: PatchWindowInput, summary: WindowSummary, outcome: WindowOutcome, train: PatchTrain | None,
        note: str | None = None,
    ) -> WindowSummary:
        """The ring's record (what the next ring's gate reads), the outcome and the memo."""
        info = workflow.info()
        if note:
            summary.notes.append(note)
        summary.outcome = outcome
        summary.finished = workflow.now()
        if summary.success_rate is None and summary.targets and outcome is not WindowOutcome.HELD:
            summary.success_rate = success_rate(summary.succeeded, summary.targets)
        record = RingRunRecord(
            group=inp.group, workflow_id=info.workflow_id, run_id=info.run_id, started=summary.started,
            finished=summary.finished, outcome=outcome, targets=summary.targets, succeeded=summary.succeeded,
            # A refused run counts as 0%: the next ring holds until the configuration is fixed.
            success_rate=summary.success_rate if outcome is not WindowOutcome.REFUSED else 0.0,
            train=train, held_reason=summary.held_reason,
        )
        await self._calls.activity(
            WorkerRole.AWS, ActivityName.RECORD_RING_RUN,
            RecordRingRunInput(account=inp.account, record=record, summary=summary), None, options.SSM_CALL,
        )
        await self._record_estate(inp, outcome, summary.held_os)
        self._set_outcome(outcome)
        workflow.upsert_memo(summary_memo(summary))
        return summary

    async def _record_estate(self, inp: PatchWindowInput, outcome: WindowOutcome, held_os: list[str]) -> None:
        """Every batch's instance results into the estate store, each instance's patch state re-read
        from SSM, so the views are fresh right after the window, with the OSes it held for want of an
        early instance (the compliance view says so). Best effort: a store outage never fails the
        window (the next ComplianceSync brings the store up to date)."""
        if not workflow.patched(ESTATE_STEP):
            return
        info = workflow.info()
        for index in sorted(self._results):
            record = RecordWindowInput(
                account=inp.account, window_workflow_id=info.workflow_id, run_id=info.run_id,
                patch_group=inp.group.value, outcome=outcome.value, instances=self._results[index].instances,
                finished=workflow.now(), held_os=list(held_os),
            )
            try:
                await self._calls.activity(
                    WorkerRole.AWS, ActivityName.RECORD_WINDOW_RESULTS, record, RecordWindowResult, options.ESTATE_WRITE,
                )
            except ActivityError as err:
                workflow.logger.warning("window results not recorded in the estate store",
                                        extra={"batch": index, "error": str(err.cause or err)})

    # --- plumbing ----------------------------------------------------------------------------

    def _set_outcome(self, outcome: WindowOutcome) -> None:
        self._outcome = outcome
        upsert(sa.WINDOW_OUTCOME.value_set(outcome.value))

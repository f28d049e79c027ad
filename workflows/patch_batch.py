"""PatchBatch: one slice (at most a few hundred instances) of a patch window.

Sends its commands (at most 50 instances each, a bounded number in flight), polls them, stops
sending at the cutoff or when the window's error budget is spent, cancels the invocations that
have not started, and collects every instance's result. Its history stays bounded: it continues
as new when the history grows, carrying ``BatchState``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    # The sandbox resolves a dataclass's field types by its module: BatchResult's rows are
    # contracts.patching types, so that module must be imported here too.
    import contracts.patching  # noqa: F401
    from contracts.models import ActivityName
    from contracts.names import SignalName, WorkflowName
    from contracts.patch_batches import (
        BatchErrors,
        BatchInput,
        BatchResult,
        CancelPendingInput,
        CancelPendingResult,
        CollectBatchInput,
        CommandProgress,
        PollCommandsInput,
        PollCommandsResult,
        SendCommandInput,
        SentCommand,
    )
    from contracts.providers import WorkerRole
    from workflows import options
    from workflows.calls import Calls, wait_until
    from workflows.patch_plan import STOP_CUTOFF, STOP_MAX_ERRORS

_REASONS = {
    STOP_CUTOFF: "the cutoff came before it was dispatched",
    STOP_MAX_ERRORS: "max errors reached before it was dispatched",
}


#: Patch marker: dispatching as soon as a command frees a place (runs before it paused first).
_SEND_WHEN_FREED = "send-when-capacity-frees"


@workflow.defn(name=WorkflowName.PATCH_BATCH)
class PatchBatchWorkflow:
    def __init__(self) -> None:
        self._stop_signal: str | None = None
        self._calls = Calls()

    @workflow.signal(name=SignalName.STOP)
    def stop(self, reason: str) -> None:
        """The window spent its error budget (or was stopped): send nothing more."""
        if self._stop_signal is None:
            self._stop_signal = reason

    @workflow.run
    async def run(self, inp: BatchInput) -> BatchResult:
        self._calls = Calls(inp.queue_prefix)
        state = inp.state
        while True:
            now = workflow.now()
            self._note_stop(inp, now)
            await self._send_more(inp)
            in_flight = await self._poll_in_flight(inp, now)
            if state.stop_reason is not None and not state.cancelled:
                await self._cancel_pending(inp, in_flight)
            finished_sending = state.next_index >= len(inp.specs) or state.stop_reason is not None
            if (not in_flight and finished_sending) or workflow.now() >= inp.end_at:
                break
            # A command finished and freed a place: dispatch the next one now, not after a pause.
            if not (self._can_send(inp) and workflow.patched(_SEND_WHEN_FREED)):
                await self._pause(inp)
            self._continue_as_new_if_long(inp)
        return await self._collect(inp)

    # --- steps -------------------------------------------------------------------------------

    def _note_stop(self, inp: BatchInput, now: datetime) -> None:
        """A stop signal, or the cutoff, ends dispatching (the first reason stays)."""
        state = inp.state
        if state.stop_reason is None:
            if self._stop_signal is not None:
                state.stop_reason = self._stop_signal
            elif now >= inp.cutoff_at:
                state.stop_reason = STOP_CUTOFF

    async def _send_more(self, inp: BatchInput) -> None:
        """Send commands while there is room in flight (installs after their batch's scans)."""
        state = inp.state
        specs = inp.specs
        scans_done = all(s.command_id in state.done for s in state.sent if specs[s.index].phase == 0)
        while state.stop_reason is None and state.next_index < len(specs):
            spec = specs[state.next_index]
            if _in_flight_count(inp) >= inp.commands_in_flight:
                return
            if spec.phase == 1 and not scans_done and any(s.phase == 0 for s in specs):
                return  # installs wait for the scans of their batch
            now = workflow.now()
            if now >= inp.cutoff_at:
                state.stop_reason = STOP_CUTOFF
                return
            spec.max_errors = str(max(0, inp.error_budget - sum(state.errors.values())))
            send = SendCommandInput(
                account=inp.account,
                spec=spec,
                # SSM itself stops delivering at the cutoff; never less than its 30 s minimum.
                delivery_timeout_seconds=max(30, int((inp.cutoff_at - now).total_seconds())),
                sent_after=inp.started,
            )
            sent = await self._calls.activity(
                WorkerRole.AWS, ActivityName.SEND_PATCH_COMMAND,
                send, SentCommand, options.SSM_CALL,
            )
            state.sent.append(sent)
            state.next_index += 1

    async def _poll_in_flight(self, inp: BatchInput, now: datetime) -> list[str]:
        """Poll the commands in flight (if any) as of the turn's start ``now``; the ones still in
        flight after it."""
        in_flight = _in_flight(inp)
        if in_flight:
            await self._poll(inp, in_flight, now)
            in_flight = _in_flight(inp)
        return in_flight

    async def _poll(self, inp: BatchInput, in_flight: list[str], now: datetime) -> None:
        state = inp.state
        # Hold at most until the next moment the workflow must act: the cutoff, then the window's end.
        deadline = inp.cutoff_at if now < inp.cutoff_at else inp.end_at
        wait = max(0, min(inp.poll_hold_seconds, int((deadline - now).total_seconds())))
        poll = PollCommandsInput(
            account=inp.account,
            command_ids=in_flight,
            wait_seconds=wait,
            known_errors={c: state.errors.get(c, 0) for c in in_flight},
        )
        result = await self._calls.activity(
            WorkerRole.AWS, ActivityName.POLL_PATCH_COMMANDS,
            poll, PollCommandsResult, options.ssm_poll(wait),
        )
        for progress in result.progress:
            _apply(inp, progress)
        errors = sum(state.errors.values())
        if errors > state.reported_errors:
            state.reported_errors = errors
            parent = workflow.get_external_workflow_handle(inp.window_id)
            await parent.signal(SignalName.BATCH_ERRORS, BatchErrors(batch=inp.batch, errors=errors))
        if errors > inp.error_budget and state.stop_reason is None:
            state.stop_reason = STOP_MAX_ERRORS

    async def _cancel_pending(self, inp: BatchInput, in_flight: list[str]) -> None:
        """Once stopped: cancel the invocations that have not started."""
        inp.state.cancelled = True
        if in_flight:
            cancel = CancelPendingInput(account=inp.account, command_ids=in_flight)
            await self._calls.activity(
                WorkerRole.AWS, ActivityName.CANCEL_PENDING_INVOCATIONS,
                cancel, CancelPendingResult, options.SSM_CALL,
            )

    @staticmethod
    def _can_send(inp: BatchInput) -> bool:
        state = inp.state
        if state.stop_reason is not None or state.next_index >= len(inp.specs):
            return False
        if _in_flight_count(inp) >= inp.commands_in_flight:
            return False
        scans_pending = any(s.command_id not in state.done for s in state.sent if inp.specs[s.index].phase == 0)
        return not (inp.specs[state.next_index].phase == 1 and scans_pending)

    async def _pause(self, inp: BatchInput) -> None:
        """Sleep between polls; wake early for a stop signal or the cutoff."""
        now = workflow.now()
        pause = timedelta(seconds=inp.poll_interval_seconds)
        if inp.state.stop_reason is None and inp.cutoff_at > now:
            pause = min(pause, inp.cutoff_at - now)
        if inp.state.stop_reason is None:
            await wait_until(lambda: self._stop_signal is not None, max(pause, options.MIN_WAIT))
        else:
            await workflow.sleep(max(pause, options.MIN_WAIT))

    def _continue_as_new_if_long(self, inp: BatchInput) -> None:
        """Keep the history bounded: carry the state into a new run."""
        info = workflow.info()
        if info.get_current_history_length() > inp.history_limit or info.is_continue_as_new_suggested():
            if inp.state.stop_reason is None and self._stop_signal is not None:
                inp.state.stop_reason = self._stop_signal
            workflow.continue_as_new(inp)

    async def _collect(self, inp: BatchInput) -> BatchResult:
        """Every instance's result: its last command's outcome and its patch state."""
        state = inp.state
        collect = CollectBatchInput(
            account=inp.account,
            window_id=inp.window_id,
            batch=inp.batch,
            sent=state.sent,
            specs=inp.specs,
            not_dispatched_reason=_REASONS.get(state.stop_reason or "", "not dispatched"),
            since=inp.started,
            record_patches=inp.record_patches,
        )
        return await self._calls.activity(
            WorkerRole.AWS, ActivityName.COLLECT_PATCH_BATCH,
            collect, BatchResult, options.SSM_SWEEP,
        )



def _in_flight(inp: BatchInput) -> list[str]:
    return [s.command_id for s in inp.state.sent if s.command_id not in inp.state.done]


def _in_flight_count(inp: BatchInput) -> int:
    return sum(1 for s in inp.state.sent if s.command_id not in inp.state.done)


def _apply(inp: BatchInput, progress: CommandProgress) -> None:
    state = inp.state
    state.errors[progress.command_id] = progress.error_count
    if progress.done and progress.command_id not in state.done:
        state.done.append(progress.command_id)

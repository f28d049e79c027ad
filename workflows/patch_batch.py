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
    from contracts import taskqueues
    from contracts.patching import (
        BatchErrors,
        BatchInput,
        BatchResult,
        BatchState,
        CancelPendingInput,
        CancelPendingResult,
        CollectBatchInput,
        CommandProgress,
        PatchingActivity,
        PollCommandsInput,
        PollCommandsResult,
        SendCommandInput,
        SentCommand,
    )
    from contracts.providers import WorkerRole
    from workflows import patch_options

STOP_CUTOFF = "cutoff"
STOP_MAX_ERRORS = "max-errors"
_REASONS = {
    STOP_CUTOFF: "the cutoff came before it was dispatched",
    STOP_MAX_ERRORS: "max errors reached before it was dispatched",
}


#: Patch marker: dispatching as soon as a command frees a place (runs before it paused first).
_SEND_WHEN_FREED = "send-when-capacity-frees"

@workflow.defn(name="PatchBatch")
class PatchBatchWorkflow:
    def __init__(self) -> None:
        self._stop_signal: str | None = None
        self._state = BatchState()

    @workflow.signal(name="stop")
    def stop(self, reason: str) -> None:
        """The window spent its error budget (or was stopped): send nothing more."""
        if self._stop_signal is None:
            self._stop_signal = reason

    @workflow.run
    async def run(self, inp: BatchInput) -> BatchResult:
        state = self._state = inp.state
        queue = taskqueues.for_role(WorkerRole.AWS, inp.queue_prefix)
        specs = inp.specs
        while True:
            now = workflow.now()
            if state.stop_reason is None:
                if self._stop_signal is not None:
                    state.stop_reason = self._stop_signal
                elif now >= inp.cutoff_at:
                    state.stop_reason = STOP_CUTOFF
            await self._send_more(inp, queue)
            in_flight = [s.command_id for s in state.sent if s.command_id not in state.done]
            if in_flight:
                await self._poll(inp, queue, in_flight, now)
                in_flight = [s.command_id for s in state.sent if s.command_id not in state.done]
            if state.stop_reason is not None and not state.cancelled:
                state.cancelled = True
                if in_flight:
                    await workflow.execute_activity(
                        PatchingActivity.CANCEL_PENDING,
                        CancelPendingInput(account=inp.account, command_ids=in_flight),
                        task_queue=queue,
                        result_type=CancelPendingResult,
                        **patch_options.SSM_CALL.kwargs(),
                    )
            finished_sending = state.next_index >= len(specs) or state.stop_reason is not None
            if (not in_flight and finished_sending) or workflow.now() >= inp.end_at:
                break
            # A command finished and freed a place: dispatch the next one now, not after a pause.
            if not (self._can_send(inp) and workflow.patched(_SEND_WHEN_FREED)):
                await self._pause(inp, in_flight)
            info = workflow.info()
            if info.get_current_history_length() > inp.history_limit or info.is_continue_as_new_suggested():
                if state.stop_reason is None and self._stop_signal is not None:
                    state.stop_reason = self._stop_signal
                workflow.continue_as_new(inp)
        return await workflow.execute_activity(
            PatchingActivity.COLLECT_BATCH,
            CollectBatchInput(
                account=inp.account,
                window_id=inp.window_id,
                batch=inp.batch,
                sent=state.sent,
                specs=specs,
                not_dispatched_reason=_REASONS.get(state.stop_reason or "", "not dispatched"),
                since=inp.started,
                record_patches=inp.record_patches,
            ),
            task_queue=queue,
            result_type=BatchResult,
            **patch_options.SSM_SWEEP.kwargs(),
        )

    async def _send_more(self, inp: BatchInput, queue: str) -> None:
        state = inp.state
        specs = inp.specs
        scans_done = all(s.command_id in state.done for s in state.sent if specs[s.index].phase == 0)
        while state.stop_reason is None and state.next_index < len(specs):
            spec = specs[state.next_index]
            in_flight = sum(1 for s in state.sent if s.command_id not in state.done)
            if in_flight >= inp.commands_in_flight:
                return
            if spec.phase == 1 and not scans_done and any(s.phase == 0 for s in specs):
                return  # installs wait for the scans of their batch
            now = workflow.now()
            if now >= inp.cutoff_at:
                state.stop_reason = STOP_CUTOFF
                return
            spec.max_errors = str(max(0, inp.error_budget - sum(state.errors.values())))
            sent: SentCommand = await workflow.execute_activity(
                PatchingActivity.SEND_COMMAND,
                SendCommandInput(
                    account=inp.account,
                    spec=spec,
                    # SSM itself stops delivering at the cutoff; never less than its 30 s minimum.
                    delivery_timeout_seconds=max(30, int((inp.cutoff_at - now).total_seconds())),
                    sent_after=inp.started,
                ),
                task_queue=queue,
                result_type=SentCommand,
                **patch_options.SSM_CALL.kwargs(),
            )
            state.sent.append(sent)
            state.next_index += 1

    @staticmethod
    def _can_send(inp: BatchInput) -> bool:
        state = inp.state
        if state.stop_reason is not None or state.next_index >= len(inp.specs):
            return False
        in_flight = sum(1 for s in state.sent if s.command_id not in state.done)
        if in_flight >= inp.commands_in_flight:
            return False
        scans_pending = any(s.command_id not in state.done for s in state.sent if inp.specs[s.index].phase == 0)
        return not (inp.specs[state.next_index].phase == 1 and scans_pending)

    async def _poll(self, inp: BatchInput, queue: str, in_flight: list[str], now: datetime) -> None:
        state = inp.state
        # Hold at most until the next moment the workflow must act: the cutoff, then the window's end.
        deadline = inp.cutoff_at if now < inp.cutoff_at else inp.end_at
        wait = max(0, min(inp.poll_hold_seconds, int((deadline - now).total_seconds())))
        result: PollCommandsResult = await workflow.execute_activity(
            PatchingActivity.POLL_COMMANDS,
            PollCommandsInput(
                account=inp.account,
                command_ids=in_flight,
                wait_seconds=wait,
                known_errors={c: state.errors.get(c, 0) for c in in_flight},
            ),
            task_queue=queue,
            result_type=PollCommandsResult,
            **patch_options.poll(wait),
        )
        for progress in result.progress:
            self._apply(progress)
        errors = sum(state.errors.values())
        if errors > state.reported_errors:
            state.reported_errors = errors
            parent = workflow.get_external_workflow_handle(inp.window_id)
            await parent.signal("batch_errors", BatchErrors(batch=inp.batch, errors=errors))
        if errors > inp.error_budget and state.stop_reason is None:
            state.stop_reason = STOP_MAX_ERRORS

    def _apply(self, progress: CommandProgress) -> None:
        state = self._state
        state.errors[progress.command_id] = progress.error_count
        if progress.done and progress.command_id not in state.done:
            state.done.append(progress.command_id)

    async def _pause(self, inp: BatchInput, in_flight: list[str]) -> None:
        """Sleep between polls; wake early for a stop signal or the cutoff."""
        now = workflow.now()
        pause = timedelta(seconds=inp.poll_interval_seconds)
        if inp.state.stop_reason is None and inp.cutoff_at > now:
            pause = min(pause, inp.cutoff_at - now)
        if inp.state.stop_reason is None:
            try:
                await workflow.wait_condition(lambda: self._stop_signal is not None, timeout=max(pause, timedelta(seconds=1)))
            except TimeoutError:
                pass
        else:
            await workflow.sleep(max(pause, timedelta(seconds=1)))

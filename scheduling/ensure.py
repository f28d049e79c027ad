"""Ensure a systems account's three window schedules exist and match its link (idempotent)."""

from __future__ import annotations

from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from contracts.patching import EnsureWindowsInput, EnsureWindowsResult, PatchWindowInput
from scheduling.windows import RunShape, build_schedule, schedule_attributes, schedule_id, schedule_memo, window_inputs


async def ensure_window_schedules(client: Client, inp: EnsureWindowsInput, shape: RunShape | None = None) -> EnsureWindowsResult:
    """Create the three schedules, or bring existing ones up to date keeping their pause state
    and recorded releases. Idempotent."""
    result = EnsureWindowsResult()
    for window in window_inputs(inp, shape or RunShape()):
        sid = schedule_id(window.account.account_id, window.group)
        try:
            await client.create_schedule(sid, build_schedule(window, inp), memo=schedule_memo(window, inp),
                                         search_attributes=schedule_attributes(window, inp))
            result.created.append(sid)
            continue
        except ScheduleAlreadyRunningError:
            pass

        async def updater(update: ScheduleUpdateInput, window: PatchWindowInput = window) -> ScheduleUpdate:
            current = await current_input(client, update.description)
            if current is not None:
                window.gate_releases = current.gate_releases
            schedule = build_schedule(window, inp, state=update.description.schedule.state)
            return ScheduleUpdate(schedule=schedule, search_attributes=schedule_attributes(window, inp))

        await client.get_schedule_handle(sid).update(updater)
        result.updated.append(sid)
    return result


async def current_input(client: Client, description: ScheduleDescription) -> PatchWindowInput | None:
    action = description.schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow) or not action.args:
        return None
    args = list(action.args)
    if isinstance(args[0], PatchWindowInput):
        return args[0]
    decoded = await client.data_converter.decode(args, [PatchWindowInput])
    return decoded[0]

"""Ensure the patch-window schedules of a systems account, from a workflow (SystemsAccount).

The schedule activity needs the Temporal client, which only the orchestrator worker holds, so it
runs as a local activity of the orchestrator worker running the calling workflow. It is best
effort for the caller: an enrollment never fails because of schedule bookkeeping. A worker that
does not run the activity at all (an older orchestrator during an upgrade) skips it with a
warning, and the account's windows stay absent (``fleetpatch windows list`` shows it) until
``scheduling.ensure_window_schedules`` runs for it again.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from contracts.models import ActivityName
    from contracts.patching import EnsureWindowsInput, EnsureWindowsResult
    from workflows import options
    from workflows.calls import Calls


async def ensure_windows(inp: EnsureWindowsInput) -> EnsureWindowsResult | None:
    """The account's three window schedules exist and match its link; None when skipped."""
    try:
        return await Calls(inp.queue_prefix).local(
            ActivityName.ENSURE_WINDOW_SCHEDULES, inp, EnsureWindowsResult, options.ENSURE_SCHEDULES
        )
    except ValueError as err:  # this worker does not run the schedule activity
        workflow.logger.warning("patch windows not ensured", extra={"reason": str(err)})
    except ActivityError as err:
        workflow.logger.warning("patch windows not ensured", extra={"reason": str(err.cause or err)})
    return None

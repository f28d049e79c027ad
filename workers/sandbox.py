"""The workflow sandbox the workers run in.

Every workflow run gets a sandbox that imports its workflow's module afresh, and with it every
module that module imports which is not passed through. The helper modules below hold no workflow
definition and no state that changes after import (constants, pure functions, dataclasses, the
typed call helpers that reach the running workflow through ``temporalio.workflow``), so one
imported copy serves every run: a run no longer re-executes (or, without a bytecode cache,
recompiles) them, and an open run in the sticky cache no longer holds copies of its own.
``tests/unit/workers/test_sandbox.py`` keeps that true of each.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

#: Pure helpers of the workflows, passed through the sandbox (never a module with @workflow.defn).
SHARED_WORKFLOW_MODULES: tuple[str, ...] = (
    "workflows.options",
    "workflows.calls",
    "workflows.shared",
    "workflows.enroll_steps",
    "workflows.enroll_setup",
    "workflows.patch_plan",
    "workflows.patch_schedules",
    "workflows.reconcile_plan",
    "workflows.ring_gate",
    "workflows.ring_steps",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandboxed runner with the shared helper modules passed through (workers and replays)."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*SHARED_WORKFLOW_MODULES))

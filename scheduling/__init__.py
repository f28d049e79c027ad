"""Patch-window schedule management, shared by the CLI (``fleetpatch windows``), the admin API
(``/v1/admin/windows``) and the orchestrator's ``ensure_window_schedules`` activity.

A neutral package: clients and activities both import it; it imports neither.
``windows`` builds schedules, ``ensure`` creates/updates them, ``views`` reads them and
``operate`` pauses, resumes, triggers, backfills and releases them.
"""

from __future__ import annotations

from scheduling.ensure import ensure_window_schedules
from scheduling.operate import ReleaseResult, WindowConflict, backfill, pause, release, release_customer, resume, trigger, wait
from scheduling.views import RunView, WindowNotFound, WindowView, describe, list_windows, show
from scheduling.windows import (
    COLLECTION_MARGIN,
    MAX_RECORDED_RELEASES,
    SCHEDULE_PREFIX,
    RunShape,
    build_schedule,
    parse_schedule_id,
    schedule_id,
    schedule_spec,
    window_inputs,
)

__all__ = [
    "COLLECTION_MARGIN", "MAX_RECORDED_RELEASES", "SCHEDULE_PREFIX", "ReleaseResult", "RunShape", "RunView",
    "WindowConflict", "WindowNotFound", "WindowView", "backfill", "build_schedule", "describe",
    "ensure_window_schedules", "list_windows", "parse_schedule_id", "pause", "release", "release_customer", "resume",
    "schedule_id", "schedule_spec", "show", "trigger", "wait", "window_inputs",
]

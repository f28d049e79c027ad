"""When a window opens: at its scheduled time for normal and catch-up runs, now otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.patch_config import window_config
from contracts.providers import PatchGroup
from workflows.patch_plan import window_clock

SCHEDULED = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
CONFIG = window_config(PatchGroup.EARLY, overrides={"duration_minutes": 240, "cutoff_minutes": 60})


def test_a_run_within_the_dispatch_part_opens_at_its_scheduled_time() -> None:
    clock = window_clock(CONFIG, SCHEDULED + timedelta(minutes=170), SCHEDULED)
    assert clock.started == SCHEDULED
    assert clock.cutoff_at == SCHEDULED + timedelta(hours=3)
    assert clock.end_at == SCHEDULED + timedelta(hours=4)


def test_a_late_run_a_backfill_or_a_trigger_opens_now() -> None:
    late = SCHEDULED + timedelta(minutes=181)
    assert window_clock(CONFIG, late, SCHEDULED).started == late
    assert window_clock(CONFIG, late, None).started == late
    early = SCHEDULED - timedelta(minutes=1)  # a backfill of a later slot: never open in the future
    assert window_clock(CONFIG, early, SCHEDULED).end_at == early + timedelta(hours=4)

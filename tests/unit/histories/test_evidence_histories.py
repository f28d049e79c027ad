"""EnrollVm's evidence step is versioned (``workflow.patched``): the histories recorded before it
(``older/``) replay without it, the current ones (``recorded/``) hold it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.models import ActivityName

HERE = Path(__file__).parent


def _activities(path: Path) -> list[str]:
    events = json.loads(path.read_text())["history"]["events"]
    return [e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
            for e in events if "activityTaskScheduledEventAttributes" in e]


def _markers(path: Path) -> int:
    return sum(1 for e in json.loads(path.read_text())["history"]["events"] if "markerRecordedEventAttributes" in e)


@pytest.mark.parametrize("scenario", ["enroll_gcp", "enroll_ec2"])
def test_current_enrollments_record_evidence_older_ones_did_not(scenario: str) -> None:
    current = HERE / "recorded" / f"{scenario}.EnrollVm.json"
    older = HERE / "older" / f"{scenario}_before_evidence.EnrollVm.json"
    assert _activities(current)[-1] == ActivityName.RECORD_ENROLLMENT_EVIDENCE
    assert ActivityName.RECORD_ENROLLMENT_EVIDENCE not in _activities(older)
    assert _markers(current) == _markers(older) + 1  # the patch marker

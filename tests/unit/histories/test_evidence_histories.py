"""EnrollVm's versioned steps (``workflow.patched``): the histories recorded before a step existed
(``older/``) replay without it, the current ones (``recorded/``) hold it.

- evidence: ``enroll_*_before_evidence`` never recorded their identity evidence;
- the short path: ``enroll_*_before_fewer_events`` started the shared children again and looked the
  managed instance up before the activation; the current runs read the shared results in one local
  activity and activate in one call (``enroll_gcp_existing_account``: no child at all)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from contracts.models import ActivityName
from workflows.enroll import FEWER_EVENTS
from workflows.enroll_steps import RECORDS_EVIDENCE

HERE = Path(__file__).parent


def _events(path: Path) -> list[dict]:
    return json.loads(path.read_text())["history"]["events"]


def _activities(path: Path) -> list[str]:
    return [e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
            for e in _events(path) if "activityTaskScheduledEventAttributes" in e]


def _patches(path: Path) -> set[str]:
    """The patch ids a run recorded (``core_patch`` markers)."""
    found = set()
    for e in _events(path):
        marker = e.get("markerRecordedEventAttributes")
        if marker and marker["markerName"] == "core_patch":
            found.add(json.loads(base64.b64decode(marker["details"]["patch-data"]["payloads"][0]["data"]))["id"])
    return found


def _local_activities(path: Path) -> list[str]:
    found = []
    for e in _events(path):
        marker = e.get("markerRecordedEventAttributes")
        if marker and marker["markerName"] == "core_local_activity":
            found.append(json.loads(base64.b64decode(marker["details"]["data"]["payloads"][0]["data"]))["activity_type"])
    return found


def _to_answer(path: Path) -> list[dict]:
    """The events up to the registration's answer (the update completed)."""
    events = _events(path)
    end = next(i for i, e in enumerate(events) if e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED")
    return events[: end + 1]


@pytest.mark.parametrize("scenario", ["enroll_gcp", "enroll_ec2"])
def test_current_enrollments_record_evidence_older_ones_did_not(scenario: str) -> None:
    current = HERE / "recorded" / f"{scenario}.EnrollVm.json"
    older = HERE / "older" / f"{scenario}_before_evidence.EnrollVm.json"
    assert _activities(current)[-1] == ActivityName.RECORD_ENROLLMENT_EVIDENCE
    assert ActivityName.RECORD_ENROLLMENT_EVIDENCE not in _activities(older)
    assert RECORDS_EVIDENCE in _patches(current) and RECORDS_EVIDENCE not in _patches(older)


@pytest.mark.parametrize("scenario", ["enroll_gcp", "enroll_ec2"])
def test_current_enrollments_take_the_short_path_older_ones_did_not(scenario: str) -> None:
    current = HERE / "recorded" / f"{scenario}.EnrollVm.json"
    older = HERE / "older" / f"{scenario}_before_fewer_events.EnrollVm.json"
    assert FEWER_EVENTS in _patches(current) and FEWER_EVENTS not in _patches(older)
    assert _local_activities(current) == [ActivityName.READ_KNOWN_SETUP] and _local_activities(older) == []
    # the link is read beside the verification, in the same workflow task
    assert _activities(current)[:2] == [ActivityName.VERIFY_IDENTITY, ActivityName.GET_LINK]
    assert ActivityName.FIND_MANAGED_INSTANCE not in _activities(current)[:3]
    if scenario == "enroll_gcp":
        assert ActivityName.ACTIVATE_NEW_INSTANCE in _activities(current)
        assert ActivityName.CREATE_ACTIVATION in _activities(older)


def test_an_enrollment_into_an_existing_account_starts_no_child() -> None:
    """The shape p1 measures: the systems account and its configuration exist."""
    current = HERE / "recorded" / "enroll_gcp_existing_account.EnrollVm.json"
    answered = _to_answer(current)
    kinds = [e["eventType"].removeprefix("EVENT_TYPE_") for e in answered]
    assert "START_CHILD_WORKFLOW_EXECUTION_INITIATED" not in kinds
    assert ActivityName.AWAIT_WORKFLOW not in _activities(current)
    assert _local_activities(current) == [ActivityName.READ_KNOWN_SETUP]
    assert [a for a in _activities(current)][:4] == [
        ActivityName.VERIFY_IDENTITY, ActivityName.GET_LINK, ActivityName.READ_VM_METADATA, ActivityName.ACTIVATE_NEW_INSTANCE,
    ]
    # to the answer: at most 40 events and 5 workflow tasks (was 69 and 10 before the short path)
    assert len(answered) <= 40 and kinds.count("WORKFLOW_TASK_COMPLETED") <= 5

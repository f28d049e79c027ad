"""p1's events and workflow tasks per enrollment, counted from a history (the recorded enrollment
into an existing account: the shape p1 measures)."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import WorkflowHistory

from benchmarks.history_shape import ANSWERED, shape

RECORDED = Path(__file__).parents[1] / "histories" / "recorded"


def _history(name: str) -> list:
    doc = json.loads((RECORDED / name).read_text())
    return list(WorkflowHistory.from_json(doc["workflow_id"], doc["history"]).events)


def test_shape_counts_up_to_the_answer_and_the_whole_run() -> None:
    events = _history("enroll_gcp_existing_account.EnrollVm.json")
    kinds = [e.event_type for e in events]
    answered_at = kinds.index(ANSWERED) + 1
    to_answer = shape(events, until=ANSWERED)
    assert to_answer["events"] == answered_at < len(events)
    assert to_answer["children"] == 0 and to_answer["markers"] == 3  # two patches, one local activity
    assert to_answer["activities"] == 5  # verify, link, metadata, activation, the agent's wait
    assert 1 <= to_answer["workflow_tasks"] <= 5
    whole = shape(events)
    assert whole["events"] == len(events) and whole["workflow_tasks"] > to_answer["workflow_tasks"]


def test_the_trivial_workflow_has_the_shape_the_ratio_is_measured_against() -> None:
    doctor = shape(_history("doctor.Doctor.json"))
    assert doctor["children"] == 0 and doctor["activities"] >= 1 and doctor["workflow_tasks"] >= 2

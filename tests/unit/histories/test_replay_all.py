"""Checked-in histories of every workflow type replay against the current workflow code: a change
that would break running workflows fails here. ``recorded/`` was recorded with the code as it is
now (``python -m tests.unit.histories.record``); ``tests/unit/patching/histories`` holds older
patch-window histories and ``older/`` older runs of other workflow types (never re-recorded), which must
keep replaying too."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from contracts.names import WorkflowName
from workers.sandbox import workflow_runner
from workflows.registry import ALL_WORKFLOWS

UNIT = Path(__file__).parents[1]
HISTORIES = sorted([*(UNIT / "histories" / "recorded").glob("*.json"), *(UNIT / "patching" / "histories").glob("*.json"),
                    *(UNIT / "histories" / "older").glob("*.json")])


def _load(path: Path) -> tuple[str, dict]:
    recorded = json.loads(path.read_text())
    return recorded["workflow_id"], recorded["history"]


def _workflow_type(history: dict) -> str:
    return history["events"][0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]


def _result(history: dict) -> object:
    """The run's result as recorded (the last event completes the run)."""
    completed = history["events"][-1]["workflowExecutionCompletedEventAttributes"]
    return json.loads(base64.b64decode(completed["result"]["payloads"][0]["data"]))


@pytest.mark.parametrize("path", HISTORIES, ids=[f"{p.parent.name}/{p.stem}" for p in HISTORIES])
async def test_replays(path: Path) -> None:
    workflow_id, recorded = _load(path)
    history = WorkflowHistory.from_json(workflow_id, recorded)
    result = await Replayer(workflows=list(ALL_WORKFLOWS), workflow_runner=workflow_runner()).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None


def test_every_workflow_type_has_a_recorded_history() -> None:
    names = {v for k, v in vars(WorkflowName).items() if k.isupper()}
    recorded = {_workflow_type(_load(p)[1]) for p in HISTORIES if p.parent.name == "recorded"}
    assert names == recorded
    assert len(names) == len(ALL_WORKFLOWS)


def test_the_recorded_runs_did_their_work() -> None:
    """The histories hold real paths, not early refusals: each run completed with its result."""
    recorded = {p.name: _load(p)[1] for p in HISTORIES if p.parent.name == "recorded"}
    assert _result(recorded["enroll_gcp.EnrollVm.json"])["activation_id"]
    assert _result(recorded["enroll_ec2.EnrollVm.json"])["managed_instance_id"] == "i-0abc"
    assert _result(recorded["reenroll_gcp.AllowReenrollment.json"])["done"].startswith("deregistered managed instance")
    assert _result(recorded["reenroll_ec2.AllowReenrollment.json"])["done"].startswith("removed")
    statuses = {s["role"]: s["ok"] for s in _result(recorded["doctor.Doctor.json"])["statuses"]}
    assert statuses == {"orchestrator": True, "aws": True, "gcp": True, "ec2": True, "azure": False, "vmware": False}
    assert _result(recorded["link_delete.LinkAdmin.json"])["removed"] is True
    reconciled = _result(recorded["reconcile_gcp.Reconcile.json"])["actions"]
    assert [(a["kind"], a["applied"]) for a in reconciled] == [("retag", True), ("deregister", True), ("report-unenrolled", False)]
    drift = _result(recorded["reconcile_gcp.Reconcile.json"])
    assert drift["configuration_version"] == 1 and len(drift["windows_ensured"]) == 3


def test_the_recorded_starts_of_both_kinds_are_kept() -> None:
    """An enrollment started as the API starts it (its first state on the start) upserts no state in
    its first task; one started without them (earlier APIs, tests) does: both must keep replaying."""
    def first_task_upserts(name: str) -> list[list[str]]:
        events = _load(UNIT / "histories" / "recorded" / name)[1]["events"]
        first = next(i for i, e in enumerate(events) if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED")
        return [sorted(e["upsertWorkflowSearchAttributesEventAttributes"]["searchAttributes"]["indexedFields"])
                for e in events[:first] if e["eventType"] == "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"]

    assert first_task_upserts("enroll_gcp_api_start.EnrollVm.json") == [["TemporalChangeVersion"]]
    assert ["EnrollmentState", "InstanceKey", "Provider"] in first_task_upserts("enroll_gcp_existing_account.EnrollVm.json")
    assert _result(_load(UNIT / "histories" / "recorded" / "enroll_gcp_api_start.EnrollVm.json")[1])["activation_id"]

"""Checked-in histories (a cut-off early window, a held-then-released on-time window and one batch
of each) replay against the current workflow code: a change that breaks running windows fails
here. Regenerate with ``python -m tests.unit.patching.record_histories`` after a versioned change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.patch_batch import PatchBatchWorkflow
from workflows.patch_window import PatchWindowWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replays(path: Path) -> None:
    recorded = json.loads(path.read_text())
    history = WorkflowHistory.from_json(recorded["workflow_id"], recorded["history"])
    result = await Replayer(workflows=[PatchWindowWorkflow, PatchBatchWorkflow]).replay_workflow(history)
    assert result.replay_failure is None


def test_there_are_histories() -> None:
    assert len(HISTORIES) == 5  # and a customer-wide on-time run from before on-time marked itself running

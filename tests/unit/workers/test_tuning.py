"""Performance knobs are configuration: worker options per role, the dev server's SQLite pragmas and
dynamic config."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.local.services import WORKER_MALLOC_ARENAS, temporal_spec, worker_specs
from config.settings import ORCHESTRATOR_STICKY_CACHE, Settings, WorkerTuning
from workers.runner import worker_options


def test_worker_options_per_role_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETPATCH_WORKER__ORCHESTRATOR__WORKFLOW_TASK_POLLS", "4")
    monkeypatch.setenv("FLEETPATCH_WORKER__ORCHESTRATOR__MAX_CACHED_WORKFLOWS", "2000")
    monkeypatch.setenv("FLEETPATCH_WORKER__AWS__MAX_CONCURRENT_ACTIVITIES", "16")
    settings = Settings()
    assert worker_options(settings.worker.orchestrator) == {
        "max_concurrent_workflow_task_polls": 4, "max_cached_workflows": 2000}
    assert worker_options(settings.worker.aws) == {"max_concurrent_activities": 16}
    assert worker_options(settings.worker.gcp) == {}  # unset: the SDK's defaults
    with pytest.raises(ValueError):
        WorkerTuning(workflow_task_polls=0)


def test_the_orchestrator_keeps_a_bounded_sticky_cache_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Open enrollments wait in the orchestrator's cache: bounded by default, also when another
    of its knobs is set; configurable; the other roles keep the SDK's default."""
    assert worker_options(Settings().worker.orchestrator) == {"max_cached_workflows": ORCHESTRATOR_STICKY_CACHE}
    assert 0 < ORCHESTRATOR_STICKY_CACHE < 1000  # below the SDK's default of 1,000 runs
    monkeypatch.setenv("FLEETPATCH_WORKER__ORCHESTRATOR__WORKFLOW_TASK_POLLS", "2")
    assert worker_options(Settings().worker.orchestrator) == {
        "max_concurrent_workflow_task_polls": 2, "max_cached_workflows": ORCHESTRATOR_STICKY_CACHE}
    monkeypatch.setenv("FLEETPATCH_WORKER__ORCHESTRATOR__MAX_CACHED_WORKFLOWS", "0")
    assert worker_options(Settings().worker.orchestrator)["max_cached_workflows"] == 0
    assert "max_cached_workflows" not in worker_options(Settings().worker.aws)


def test_the_dev_server_gets_its_sqlite_pragmas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = temporal_spec(Settings(state_dir=tmp_path)).argv
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--sqlite-pragma"] == ["journal_mode=wal", "synchronous=normal"]
    monkeypatch.setenv("FLEETPATCH_LOCAL__TEMPORAL_SQLITE_PRAGMAS", "[]")  # SQLite's own defaults
    assert "--sqlite-pragma" not in temporal_spec(Settings(state_dir=tmp_path)).argv


def test_local_workers_run_with_few_malloc_arenas_unless_the_environment_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    specs = worker_specs(Settings(state_dir=tmp_path), {"X": "1"})
    assert specs and all(s.env["MALLOC_ARENA_MAX"] == WORKER_MALLOC_ARENAS == "2" and s.env["X"] == "1" for s in specs)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert {s.env["MALLOC_ARENA_MAX"] for s in worker_specs(Settings(state_dir=tmp_path), {})} == {"8"}


def test_the_dev_server_gets_its_dynamic_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "--dynamic-config-value" not in temporal_spec(Settings(state_dir=tmp_path)).argv  # the server's own defaults
    monkeypatch.setenv("FLEETPATCH_LOCAL__TEMPORAL_DYNAMIC_CONFIG",
                       '{"matching.numTaskqueueReadPartitions": 1, "frontend.namespaceRPS": 4000}')
    argv = temporal_spec(Settings(state_dir=tmp_path)).argv
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--dynamic-config-value"] == [
        "matching.numTaskqueueReadPartitions=1", "frontend.namespaceRPS=4000"]

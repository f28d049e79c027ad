"""What ``fleetpatch up`` keeps between runs, checked before it starts, and ``fleetpatch reset``.

Temporal's SQLite file and the local clouds' saved state describe one world: Temporal remembers
systems accounts, activations and managed instances that only the local AWS holds. Either both
are kept or both start clean; never one without the other.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

from config.settings import Settings

TEMPORAL_FILES = ("temporal.db", "temporal.db-wal", "temporal.db-shm", "temporal.db-journal")
#: kept by a reset: the local secrets (tokens and keys operators' tools hold), logs, the run lock
KEPT = {"secrets", "logs", "up.lock"}


def restore_problems(settings: Settings) -> list[str]:
    """Why a start would not find the world the last run left; empty when it would."""
    state = settings.state_dir.resolve()
    problems = []
    try:
        aws = importlib.import_module("localclouds.aws")
    except ModuleNotFoundError:
        return problems
    problem = aws.restore_problem(state)
    if problem:
        problems.append(f"the local AWS cannot restore its saved state: {problem}")
    elif (state / "temporal.db").exists() and not aws.has_saved_state(state):
        problems.append(
            "Temporal remembers earlier runs (temporal.db) but the local AWS has no saved state "
            "(it was lost, or written before the local AWS kept its state): enrollments would land "
            "in systems accounts nobody can find")
    return problems


def reset(settings: Settings) -> list[Path]:
    """Remove Temporal's database and every local cloud's state; returns what was removed."""
    state = settings.state_dir.resolve()
    if not state.is_dir():
        return []
    removed = []
    for entry in sorted(state.iterdir()):
        if entry.name in KEPT:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry)
    return removed

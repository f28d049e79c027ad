"""Fixtures for the fleet tests: one real local AWS process for the folder (shared with the
localaws tests' fixture code), a thread pool for agents."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.unit.localaws.conftest import LocalAws, local_aws  # noqa: F401 - the fixture itself

__all__ = ["LocalAws"]


@pytest.fixture(scope="session")
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="agents") as executor:
        yield executor

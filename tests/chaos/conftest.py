"""One ``fleetpatch up`` (its own state dir and ports) shared by every fault test of the folder:
each test audits only the VMs it booted, and duplicates over everything."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.stack import Local, new_stack


@pytest.fixture(scope="session")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    running = new_stack(tmp_path_factory.mktemp("chaos"))
    try:
        print(f"\nfleetpatch up healthy in {running.start():.0f}s ({running.state})")
        yield running
    finally:
        running.stop()

"""Waiting for an emulator process a test started to answer its health route."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx


def wait_healthy(
    proc: subprocess.Popen[bytes], url: str, what: str, *, timeout: float = 30, output: Callable[[], str] = lambda: ""
) -> None:
    """Return once ``url`` answers 200; fail the test (with ``output()``) when ``proc`` exits or
    ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"{what} exited: {output()}"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{what} never became healthy"
        time.sleep(0.1)

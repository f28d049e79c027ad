"""Start and stop the vcsim binary; read the SDK URL it prints once it listens."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import threading
import time
from pathlib import Path

from localclouds.vcsim import PASSWORD, USERNAME


class VcsimStartError(RuntimeError):
    """vcsim exited or stayed silent instead of printing its URL."""


class VcsimProcess:
    """One running vcsim. ``url`` is its SDK URL (``http://HOST:PORT/sdk``)."""

    def __init__(self, popen: subprocess.Popen[bytes], url: str) -> None:
        self.popen = popen
        self.url = url

    @property
    def base_url(self) -> str:
        return self.url.removesuffix("/sdk")

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


def start_vcsim(
    binary: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    username: str = USERNAME,
    password: str = PASSWORD,
    log_path: Path | None = None,
    timeout: float = 20.0,
) -> VcsimProcess:
    """Run vcsim on ``host:port`` (0: a free port) and wait until it prints its URL."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        popen = subprocess.Popen(
            [str(binary), "-listen", f"{host}:{port}", "-username", username, "-password", password],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
        )
    finally:
        if log_path:
            log.close()  # type: ignore[union-attr]
    assert popen.stdout is not None
    try:
        line = _read_line(popen, timeout)
    except BaseException:
        VcsimProcess(popen, "").stop()
        raise
    # Keep draining stdout so a chatty vcsim can never block on a full pipe.
    threading.Thread(target=_drain, args=(popen,), daemon=True).start()
    return VcsimProcess(popen, line)


def _read_line(popen: subprocess.Popen[bytes], timeout: float) -> str:
    assert popen.stdout is not None
    fd = popen.stdout.fileno()
    buffer = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise VcsimStartError(f"vcsim printed no URL within {timeout:.0f}s")
            if not selector.select(remaining):
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                code = popen.wait(5)
                raise VcsimStartError(f"vcsim exited ({code}) before listening; see its log")
            buffer += chunk
    url = buffer.split(b"\n", 1)[0].decode().strip()
    if not url.startswith("http://") or not url.endswith("/sdk"):
        raise VcsimStartError(f"vcsim printed an unexpected first line: {url[:200]!r}")
    return url


def _drain(popen: subprocess.Popen[bytes]) -> None:
    assert popen.stdout is not None
    try:
        while popen.stdout.read(4096):
            pass
    except (OSError, ValueError):
        pass

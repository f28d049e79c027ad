"""Start the local clouds as real processes on free loopback ports, and stop them by their pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.conftest import free_port  # noqa: F401 - re-exported to the tests that start clouds

REPO = Path(__file__).resolve().parents[3]




@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM this process (only it) and return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # never leave it behind; the test still fails
            self.proc.wait(timeout=5)
            raise


def start(
    argv: list[str],
    port: int,
    log: Path,
    *,
    health: str = "/__fleetpatch/health",
    timeout: float = 30,
) -> Process:
    """Run ``python ARGV`` from the repository, waiting until ``health`` answers 200."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, *argv], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    process = Process(proc, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{process.base}{health}", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    process.stop()
    raise RuntimeError(f"{argv} did not become healthy: {log.read_text()[-2000:]}")


def start_cloud(module: str, port: int, state_dir: Path, *extra: str) -> Process:
    """``python -m module --host 127.0.0.1 --port PORT --state-dir DIR EXTRA``."""
    argv = ["-m", module, "--host", "127.0.0.1", "--port", str(port), "--state-dir", str(state_dir)]
    return start([*argv, *extra], port, state_dir / f"{module}.log")


def start_moto(port: int, log: Path) -> Process:
    """A plain moto server (the local AWS endpoint the EC2 IMDS reads instances from)."""
    return start(
        ["-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        port,
        log,
        health="/moto-api/data.json",
    )

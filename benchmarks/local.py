"""The local default as the benchmarks run it: ``fleetpatch up`` in a private state directory on
free ports (never the developer's ``.fleetpatch`` or the default ports), every worker role its own
process, and what the benchmarks read of it: addresses, the admin token, a Temporal client with
the local codec, and each process's memory and CPU from ``/proc``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from config.codec import EncryptionCodec, data_converter

FLEETPATCH = str(Path(sys.executable).parent / "fleetpatch")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(state: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a private ``fleetpatch up``: its state dir and a free port for everything."""
    from contracts.providers import WorkerRole

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "FLEETPATCH_"))}
    env["FLEETPATCH_STATE_DIR"] = str(state)
    names = ("TEMPORAL", "TEMPORAL_UI", "AWS", "GCP", "AZURE_IMDS", "AZURE_ARM", "EC2_IMDS", "VCENTER",
             "VCENTER_GUEST", "FLEET")
    for name in names:
        env[f"FLEETPATCH_LOCAL__{name}_PORT"] = str(free_port())
    env["FLEETPATCH_API__PORT"] = str(free_port())
    env["FLEETPATCH_LOCAL__WORKER_METRICS_PORTS"] = json.dumps({r.value: free_port() for r in WorkerRole})
    env["FLEETPATCH_LOG_LEVEL"] = "WARNING"
    env.update(extra or {})
    return env


@dataclass
class ProcessUse:
    """One process's memory (MB) and CPU seconds, read from ``/proc``."""

    rss_mb: float
    peak_rss_mb: float
    cpu_s: float


def process_use(pid: int) -> ProcessUse | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)

    def mb(name: str) -> float:
        return int(fields.get(name, "0 kB").split()[0]) / 1024

    return ProcessUse(mb("VmRSS"), mb("VmHWM"), (int(stat[11]) + int(stat[12])) / TICKS)


class LocalDefault:
    """A running private ``fleetpatch up``."""

    def __init__(self, root: Path, proc: subprocess.Popen[bytes], env: dict[str, str]) -> None:
        self.root, self.proc, self.env = root, proc, env
        self.state = root / ".fleetpatch"

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads((self.state / "local.json").read_text())

    @property
    def admin_token(self) -> str:
        return Path(self.doc["admin_token_file"]).read_text().strip()

    def pids(self) -> dict[str, int]:
        return {name: int(pid) for name, pid in self.doc["processes"].items()}

    def use(self) -> dict[str, ProcessUse]:
        """Memory and CPU of every supervised process (those that are alive)."""
        found = {name: process_use(pid) for name, pid in self.pids().items()}
        return {name: use for name, use in found.items() if use is not None}

    async def client(self) -> Client:
        key = Path(self.doc["codec_keys_file"]).read_text().strip()
        return await Client.connect(self.doc["temporal"], data_converter=data_converter(EncryptionCodec([key])))

    def api(self, timeout: float = 120) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
        return httpx.AsyncClient(base_url=self.doc["api"], timeout=timeout, limits=limits)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.doc["api"], timeout=60,
                            headers={"Authorization": f"Bearer {self.admin_token}"})

    def cli(self, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([FLEETPATCH, *args], env={**self.env, "COLUMNS": "200"}, cwd=self.root,
                              capture_output=True, text=True, timeout=timeout)


def _healthy(local: LocalDefault) -> bool:
    try:
        doc = local.doc
        if not doc.get("running"):
            return False
        return all(httpx.get(url, timeout=2).status_code == 200
                   for url in (doc["api"] + "/healthz", doc["fleet"]["url"] + "/vms"))
    except (OSError, ValueError, KeyError, httpx.HTTPError):
        return False


@contextmanager
def running(extra_env: dict[str, str] | None = None, timeout: float = 300, keep: Path | None = None
            ) -> Iterator[LocalDefault]:
    """``fleetpatch up`` in a fresh private directory until the block ends (then stopped, its
    directory removed unless ``keep`` names where to copy its logs)."""
    root = Path(tempfile.mkdtemp(prefix="fp-bench-up-"))
    state = root / ".fleetpatch"
    env = environment(state, extra_env)
    log = open(root / "up.out", "ab")  # noqa: SIM115 - the child holds it
    proc = subprocess.Popen([FLEETPATCH, "up"], env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    local = LocalDefault(root, proc, env)
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(local):
            if proc.poll() is not None:
                raise RuntimeError(f"fleetpatch up exited early; see {root / 'up.out'}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"fleetpatch up was not healthy within {timeout:.0f}s")
            time.sleep(0.5)
        yield local
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        if keep is not None:
            shutil.copytree(state / "logs", keep, dirs_exist_ok=True)
            shutil.copy(root / "up.out", keep / "up.out")
        shutil.rmtree(root, ignore_errors=True)

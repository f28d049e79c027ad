"""``fleetpatch up``: start the embedded default, keep it running, stop all of it on Ctrl-C.

Every child runs in its own session (process group), so a terminal's Ctrl-C reaches only the
supervisor, which then stops the children in reverse order and kills any process group that
outlives its grace period. Children also get PR_SET_PDEATHSIG so a killed supervisor does not
leave orphans behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from clients.local import services
from clients.local.services import ServiceSpec
from config.settings import Settings
from estate import db

log = logging.getLogger("fleetpatch.up")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class AlreadyRunning(RuntimeError):
    pass


@dataclass
class Supervised:
    spec: ServiceSpec
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    stopping: bool = False
    ready: bool = False
    watcher: asyncio.Task | None = field(default=None, repr=False)


Event = Callable[[str, str], None]  # (service name, message)


class Supervisor:
    def __init__(self, settings: Settings, on_event: Event | None = None) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.resolve()
        self.logs_dir = self.state_dir / "logs"
        self.children: dict[str, Supervised] = {}
        self.clouds = services.available_clouds()
        self._on_event = on_event or (lambda name, msg: log.info(msg, extra={"service": name}))
        self._lock_file: int | None = None
        self._stopping = False

    # --- lifecycle -----------------------------------------------------------------------

    def acquire_lock(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_dir / "up.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            os.close(fd)
            raise AlreadyRunning(f"`fleetpatch up` is already running for {self.state_dir}") from err
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_file = fd

    async def start(self) -> None:
        """Everything: Temporal, the local clouds, the workers and the API."""
        await self._launch(services.temporal_spec(self.settings))
        await self.start_clouds()
        await self.migrate_estate()
        env = services.shared_env(self.settings, self.clouds)
        for spec in [*services.worker_specs(self.settings, env), services.api_spec(self.settings, env)]:
            await self._launch(spec)
        self.write_local_json()

    async def migrate_estate(self) -> None:
        """Bring the estate store to the current schema before anything reads or writes it."""
        await asyncio.to_thread(db.upgrade, self.settings.database_url)
        self._on_event("estate", f"store ready: {db.display_url(self.settings.database_url)}")

    async def start_clouds(self) -> None:
        """Only the local clouds (tests run Temporal and fleetpatch themselves)."""
        for spec in services.cloud_specs(self.settings, self.clouds):
            await self._launch(spec)

    async def keep_local_json_fresh(self, interval: float = 1.0) -> None:
        """Rewrite local.json when the simulated fleet's VM list changes (it lists them under ``vms``)."""
        vms = self.state_dir / "fleet" / "vms.json"
        seen: float | None = None
        while not self._stopping:
            try:
                mtime = vms.stat().st_mtime
            except FileNotFoundError:
                mtime = None
            if mtime != seen:
                seen = mtime
                self.write_local_json()
            await asyncio.sleep(interval)

    async def wait_ready(self, timeout: float = 180.0) -> list[str]:
        """Wait until every service with a health URL answers. Returns those that never did."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0, verify=False) as http:
            pending = {n for n, c in self.children.items() if c.spec.health_url}
            while pending and time.monotonic() < deadline and not self._stopping:
                for name in sorted(pending):
                    child = self.children[name]
                    if await _answers(http, child.spec.health_url):
                        child.ready = True
                        pending.discard(name)
                        self._on_event(name, "ready")
                if pending:
                    await asyncio.sleep(0.5)
        return sorted(pending)

    async def stop(self) -> None:
        self._stopping = True
        # The API and workers first (workers drain running activities), then clouds, Temporal last.
        by_kind: dict[str, list[str]] = {}
        for name, child in self.children.items():
            by_kind.setdefault(child.spec.kind, []).append(name)
        for kind in ("api", "worker", "cloud", "temporal"):
            await asyncio.gather(*(self._stop_one(n) for n in by_kind.get(kind, [])))
        self.write_local_json(stopped=True)
        self.release_lock()

    def release_lock(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    # --- children ------------------------------------------------------------------------

    async def _launch(self, spec: ServiceSpec) -> None:
        child = self.children.get(spec.name) or Supervised(spec=spec, log_path=self.logs_dir / f"{spec.name}.log")
        self.children[spec.name] = child
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        logfile = open(child.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            child.process = await asyncio.create_subprocess_exec(
                *spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=logfile,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=os.getcwd(),
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            logfile.close()
        child.started_at = time.monotonic()
        child.stopping = False
        self._on_event(spec.name, f"started (pid {child.process.pid})")
        child.watcher = asyncio.create_task(self._watch(child))

    async def _watch(self, child: Supervised) -> None:
        assert child.process is not None
        code = await child.process.wait()
        if child.stopping or self._stopping:
            return
        self._on_event(child.spec.name, f"exited with code {code}; see {child.log_path}")
        if not child.spec.restart:
            return
        # Back off when a process keeps dying right after it starts.
        lived = time.monotonic() - child.started_at
        child.restarts = 0 if lived > 60 else child.restarts + 1
        delay = min(2 ** child.restarts, 30) if child.restarts else 1
        await asyncio.sleep(delay)
        if not self._stopping:
            await self._launch(child.spec)
            self.write_local_json()
            self._on_event(child.spec.name, "restarted")

    async def _stop_one(self, name: str, grace: float = 25.0) -> None:
        child = self.children[name]
        child.stopping = True
        proc = child.process
        if proc is None or proc.returncode is not None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=grace)
        except TimeoutError:
            self._on_event(name, "did not stop in time; killing")
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
        # Whatever the child left in its group (e.g. a simulator it spawned) goes too.
        _signal_group(proc.pid, signal.SIGKILL)
        self._on_event(name, "stopped")

    def pids(self) -> dict[str, int]:
        return {
            n: c.process.pid
            for n, c in self.children.items()
            if c.process is not None and c.process.returncode is None
        }

    def write_local_json(self, stopped: bool = False) -> None:
        doc = services.local_json(self.settings, self.clouds, {} if stopped else self.pids())
        doc["running"] = not stopped
        path = self.settings.local_json
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        tmp.replace(path)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _answers(http: httpx.AsyncClient, url: str | None) -> bool:
    if url is None:
        return True
    try:
        response = await http.get(url)
    except httpx.HTTPError:
        return False
    return response.status_code == 200

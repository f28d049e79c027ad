"""The local AWS keeps its state across restarts: saved under ``{state-dir}/aws/``, loaded at start.

Everything is saved generically, never field by field: every moto backend in use (Organizations,
IAM, STS, SSM parameters, S3 objects, tags, EC2, ...) and every state object of the emulator's own
services (``LocalAws.state_objects()``: SSM hybrid plane, Run Command, patch data, inventory,
asynchronous Organizations, the moved clock). A new backend or a new field persists with no change
here.

The file is one header line (JSON: format, moto version, when) and a pickle, written to a
temporary file and renamed over the old one, so a crash leaves the previous save intact. Saves
happen every ``interval`` seconds when something changed, and once more at a clean shutdown; a
``kill -9`` loses at most the last interval. Requests and a save never overlap (``Gate``), so a
large state (10,000 managed instances: seconds to pickle) spaces its saves out: the next save
waits at least ``PAUSE_SHARE`` times the requests' last pause, so saves hold requests back at
most 1/``PAUSE_SHARE`` of the time.
"""

from __future__ import annotations

import _thread
import contextlib
import importlib
import io
import json
import logging
import os
import pickle
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from copy import deepcopy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

log = logging.getLogger(__name__)

FORMAT = 1
STATE_FILE = "state.bin"
PAUSE_SHARE = 20


def next_save_in(interval: float, paused: float) -> float:
    """Seconds until the next save: the interval, or longer when the last one held requests long."""
    return max(interval, paused * PAUSE_SHARE)


class StateNotRestored(RuntimeError):
    """The saved state exists but cannot be loaded; the message says what to do."""


def state_file(aws_dir: Path) -> Path:
    return Path(aws_dir) / STATE_FILE


def moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def header_problem(path: Path) -> str | None:
    """Why the saved state at ``path`` cannot be restored (read from its header), or None."""
    if not path.exists():
        return None
    try:
        with path.open("rb") as stream:
            header = json.loads(stream.readline(4096))
    except (OSError, ValueError) as err:
        return f"{path} is unreadable ({type(err).__name__})"
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return f"{path} was written in another format ({header.get('format') if isinstance(header, dict) else '?'})"
    if header.get("moto") != moto_version():
        return f"{path} was written by moto {header.get('moto')}, this is moto {moto_version()}"
    return None


# -- pickling what moto and the emulator hold ---------------------------------------------------

class _Factory:
    """A picklable stand-in for a ``defaultdict`` factory defined as a lambda: it returns a copy
    of the (empty) value the lambda produced."""

    def __init__(self, sample: Any) -> None:
        self.sample = sample

    def __call__(self) -> Any:
        return deepcopy(self.sample)


def _lock() -> Any:
    return _thread.allocate_lock()


def _rlock() -> Any:
    return threading.RLock()


def _public_key(der: bytes) -> Any:
    return serialization.load_der_public_key(der)


def _private_key(der: bytes) -> Any:
    return serialization.load_der_private_key(der, password=None)


_PUBLIC = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)
_PRIVATE = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)


class _Pickler(pickle.Pickler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from moto.core.base_backend import BackendDict

        super().__init__(*args, **kwargs)
        self._backends = BackendDict

    def persistent_id(self, obj: Any) -> Any:
        # A model that refers to a whole moto backend refers to the live one after a restore.
        if isinstance(obj, self._backends):
            return ("moto-backends", *_global_name(obj))
        return None

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is _thread.LockType:
            return _lock, ()
        if kind is type(threading.RLock()):
            return _rlock, ()
        if isinstance(obj, _PUBLIC):
            der = obj.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
            return _public_key, (der,)
        if isinstance(obj, _PRIVATE):
            der = obj.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            return _private_key, (der,)
        if isinstance(obj, defaultdict):
            # Rebuilt without calling the class (moto subclasses take other arguments) and with
            # a picklable factory where the original is a lambda.
            factory = obj.default_factory
            if _local(factory):
                factory = _Factory(factory())
            state = (factory, getattr(obj, "__dict__", None), list(dict.items(obj)))
            return _new_defaultdict, (kind,), state, None, None, _fill_defaultdict
        return NotImplemented


def _new_defaultdict(kind: type) -> Any:
    return defaultdict.__new__(kind)


def _fill_defaultdict(obj: Any, state: tuple[Any, Any, list[tuple[Any, Any]]]) -> None:
    factory, attributes, items = state
    obj.default_factory = factory
    if attributes:
        obj.__dict__.update(attributes)
    dict.update(obj, items)


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Any:
        kind, module_name, name = pid
        if kind != "moto-backends":
            raise pickle.UnpicklingError(f"unknown reference {kind}")
        return getattr(importlib.import_module(module_name), name)


def _global_name(backends: Any) -> tuple[str, str]:
    module_name = backends.backend.__module__
    module = sys.modules.get(module_name)
    name = next((k for k, v in vars(module).items() if v is backends), None) if module else None
    if name is None:
        raise pickle.PicklingError(f"moto backend {backends.service_name} has no global name")
    return module_name, name


def _local(factory: Any) -> bool:
    return factory is not None and "<" in getattr(factory, "__qualname__", "<")


# -- moto's backends ----------------------------------------------------------------------------

def _moto_backends() -> list[tuple[str, str, dict[str, Any]]]:
    """(module, global name, {account id: per-account backends}) of every moto backend in use."""
    from moto.core.base_backend import BackendDict

    found = []
    for backends in list(BackendDict._instances):
        try:
            module_name, name = _global_name(backends)
        except pickle.PicklingError:
            log.warning("moto backend %s has no module-level name: not saved", backends.service_name)
            continue
        found.append((module_name, name, dict(backends)))
    return found


def _restore_moto(saved: list[tuple[str, str, dict[str, Any]]]) -> None:
    from moto.core.base_backend import BackendDict, backend_lock

    with backend_lock:
        for module_name, name, accounts in saved:
            backends = getattr(importlib.import_module(module_name), name)
            dict.clear(backends)
            dict.update(backends, accounts)
            if backends not in BackendDict._instances:
                BackendDict._instances.append(backends)


# -- requests and saves never overlap -----------------------------------------------------------

class Gate:
    """Many requests at once, or one save alone (a save waits for running requests and holds
    new ones back until it is done)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._saving = False

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        with self._cond:
            while self._saving:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self, timeout: float) -> Iterator[bool]:
        with self._cond:
            self._saving = True
            quiet = self._cond.wait_for(lambda: self._active == 0, timeout)
        try:
            yield quiet
        finally:
            with self._cond:
                self._saving = False
                self._cond.notify_all()


# -- the store ----------------------------------------------------------------------------------

class StateStore:
    """Saves and loads the whole local AWS (moto + the emulator's state objects)."""

    def __init__(self, aws_dir: Path, app: Any, interval: float = 5.0) -> None:
        self.path = state_file(aws_dir)
        self.app = app
        self.gate: Gate = app.gate
        self.interval = interval
        self.dirty: threading.Event = app.changed  # set by every request
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self) -> bool:
        """Restore the saved state; False when there is none. Raises StateNotRestored."""
        problem = header_problem(self.path)
        if problem:
            raise StateNotRestored(f"the local AWS cannot restore its saved state: {problem}. "
                                   "Run `fleetpatch reset` to start clean.")
        if not self.path.exists():
            return False
        try:
            with self.path.open("rb") as stream:
                stream.readline()
                saved = _Unpickler(stream).load()  # noqa: S301 - our own file, in the state dir
            _restore_moto(saved["moto"])
            for key, state in saved["local"].items():
                self.app.state_objects()[key].__dict__.update(state)
        except Exception as err:
            raise StateNotRestored(
                f"the local AWS cannot restore its saved state {self.path} "
                f"({type(err).__name__}: {err}). Run `fleetpatch reset` to start clean.") from err
        return True

    def _snapshot(self) -> bytes:
        local = {}
        for key, obj in self.app.state_objects().items():
            runtime = getattr(obj, "RUNTIME_FIELDS", ())
            local[key] = {k: v for k, v in vars(obj).items() if k not in runtime}
        buffer = io.BytesIO()
        header = {"format": FORMAT, "moto": moto_version(), "saved": datetime.now(UTC).isoformat()}
        buffer.write(json.dumps(header).encode() + b"\n")
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(
            {"moto": _moto_backends(), "local": local})
        return buffer.getvalue()

    def save(self, timeout: float = 10.0) -> float:
        """Write the state now (temporary file + rename); the seconds requests were held back."""
        self.dirty.clear()
        with self.gate.exclusive(timeout) as quiet:
            started = time.monotonic()
            if not quiet:
                log.warning("saving while requests are still running")
            data = self._snapshot()
            paused = time.monotonic() - started
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        with contextlib.suppress(OSError):
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return paused

    def start(self) -> None:
        if self.interval > 0:
            self._thread = threading.Thread(target=self._run, name="state-saver", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            if self.dirty.is_set():
                try:
                    wait = next_save_in(self.interval, self.save())
                except Exception:  # keep serving; the next period tries again
                    log.exception("saving the local AWS state failed")

    def close(self) -> None:
        """Stop the periodic saves and save one last time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.save()

"""A throwaway PostgreSQL cluster from Debian's ``postgresql`` binaries, for tests and ``make bench``.

The cluster lives in a temporary directory and listens on a Unix socket only (no TCP port to
collide with). PostgreSQL refuses to run as root, so when the tests run as root the cluster runs
as the ``postgres`` system user the Debian package creates (through ``runuser``).
"""

from __future__ import annotations

import os
from pathlib import Path
import pwd
import shutil
import subprocess
import tempfile
import uuid

import psycopg



def _bin_dir() -> Path:
    """``FLEETPATCH_TEST_PG_BIN``, else Debian's PostgreSQL 15, else the newest Debian one installed."""
    if os.environ.get("FLEETPATCH_TEST_PG_BIN"):
        return Path(os.environ["FLEETPATCH_TEST_PG_BIN"])
    preferred = Path("/usr/lib/postgresql/15/bin")
    if preferred.exists():
        return preferred
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else preferred


BIN_DIR = _bin_dir()
SUPERUSER = "postgres"


class TemporaryPostgres:
    def __init__(self, bin_dir: Path = BIN_DIR) -> None:
        if not (bin_dir / "initdb").exists():
            raise RuntimeError(f"no PostgreSQL binaries in {bin_dir}: run scripts/install-system-deps.sh")
        self.bin_dir = bin_dir
        self.base = Path(tempfile.mkdtemp(prefix="fp-pg-"))
        self.data = self.base / "data"
        self.socket_dir = self.base / "sock"
        self.started = False

    def _run(self, *argv: str) -> None:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def start(self) -> TemporaryPostgres:
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SUPERUSER)
            for path in (self.base, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-c listen_addresses='' -k {self.socket_dir} -c fsync=off -c synchronous_commit=off"
            " -c full_page_writes=off -c max_connections=50"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.base / "log"), "-w", "start")
        self.started = True
        return self

    def stop(self) -> None:
        if self.started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its SQLAlchemy URL."""
        name = name or f"t{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host=str(self.socket_dir), user=SUPERUSER, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __enter__(self) -> TemporaryPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

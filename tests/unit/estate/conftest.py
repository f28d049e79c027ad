"""Every estate store test runs twice: on SQLite (a file, WAL) and on a real PostgreSQL 15 cluster
the session starts from Debian's binaries (tests/support/postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from estate import db
from tests.support.postgres import TemporaryPostgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[TemporaryPostgres]:
    with TemporaryPostgres() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def estate_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'estate.db'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
def sessions(estate_url: str) -> Iterator[sessionmaker[Session]]:
    db.upgrade(estate_url)
    engine = db.make_engine(estate_url)
    yield db.sessions(engine)
    engine.dispose()

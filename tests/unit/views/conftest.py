"""The API over a seeded SQLite estate store, with Temporal unreachable (the reads need none)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from estate import db, tokens
from tests.support import estate_fleet
from tests.support.browser import serve

ADMIN = estate_fleet.ADMIN_TOKEN  # random, >= 32 characters (config/secrets.py refuses weak ones)


async def _no_temporal():
    raise ConnectionError("no Temporal in this test")


@pytest.fixture(scope="module")
def estate_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("estate")
    estate_fleet.seed(estate_fleet.settings_for(state).database_url)
    return state


@pytest.fixture(scope="module")
def api(estate_dir: Path) -> Iterator[TestClient]:
    app = create_app(estate_fleet.settings_for(estate_dir, ADMIN), TemporalGateway(_no_temporal))
    with TestClient(app, base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="module")
def customer_tokens(estate_dir: Path) -> dict[str, str]:
    """One read token per customer, issued straight into the store."""
    engine = db.make_engine(estate_fleet.settings_for(estate_dir).database_url)
    try:
        with db.transaction(db.sessions(engine)) as session:
            return {c: tokens.issue(session, c, f"test {c}")[1] for c in estate_fleet.CUSTOMERS}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def site(estate_dir: Path) -> Iterator[str]:
    """The same API over real HTTP on loopback (browser and CLI tests)."""
    app = create_app(estate_fleet.settings_for(estate_dir, ADMIN), TemporalGateway(_no_temporal))
    with serve(app) as base:
        yield base


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

"""HTTP timings of the estate read API over a seeded store: ``GET /v1/compliance`` and the first page
of ``GET /v1/instances``, as an admin and as one customer, through the whole app (auth, token
lookup, query, JSON). Requests go in process over ASGI (no socket), so the numbers are the API's."""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from config.secrets import weakness
from config.settings import Settings
from estate import db, tokens



def _strong_token() -> str:
    """A random admin token that start-up accepts (never short, never a placeholder by chance)."""
    while True:
        value = secrets.token_urlsafe(32)
        if weakness(value) is None:
            return value


ADMIN = _strong_token()


async def _no_temporal():  # noqa: ANN202 - the reads need no Temporal
    raise ConnectionError("not needed")


def _median_ms(client: TestClient, path: str, params: list[tuple[str, str]], headers: dict[str, str], repeat: int) -> float:
    client.get(path, params=params, headers=headers).raise_for_status()  # warm
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        answer = client.get(path, params=params, headers=headers)
        samples.append((time.perf_counter() - start) * 1000)
        answer.raise_for_status()
    return statistics.median(samples)


def run(url: str, customer: str, repeat: int = 9) -> list[tuple[str, float]]:
    """``(measure, median milliseconds)`` over the store at ``url`` (already seeded)."""
    engine = db.make_engine(url)
    with db.transaction(db.sessions(engine)) as session:
        _, customer_token = tokens.issue(session, customer, "bench")
    engine.dispose()
    with tempfile.TemporaryDirectory(prefix="fp-bench-api-") as tmp:
        settings = Settings(state_dir=Path(tmp), api={"admin_token": ADMIN}, database={"url": url})
        app = create_app(settings, TemporalGateway(_no_temporal))
        admin = {"Authorization": f"Bearer {ADMIN}"}
        mine = {"Authorization": f"Bearer {customer_token}"}
        by = [("group_by", "customer"), ("group_by", "provider")]
        page = [("limit", "100")]
        with TestClient(app) as client:
            return [
                ("HTTP /v1/compliance by customer, provider (admin)",
                 _median_ms(client, "/v1/compliance", by, admin, repeat)),
                ("HTTP /v1/compliance by customer, provider (customer token)",
                 _median_ms(client, "/v1/compliance", by, mine, repeat)),
                ("HTTP /v1/instances, first page of 100 (admin)",
                 _median_ms(client, "/v1/instances", page, admin, repeat)),
                ("HTTP /v1/instances, first page of 100 (customer token)",
                 _median_ms(client, "/v1/instances", page, mine, repeat)),
            ]

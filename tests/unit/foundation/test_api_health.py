"""/healthz answers ok only when Temporal answers; /docs serves the OpenAPI UI."""

from __future__ import annotations

import httpx
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from config.settings import Settings


def _client_for(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_healthz_ok_when_temporal_answers(dev_env: WorkflowEnvironment) -> None:
    app = create_app(Settings(), TemporalGateway.for_client(dev_env.client))
    async with _client_for(app) as http:
        response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "temporal": "ok"}


async def test_healthz_503_when_temporal_unreachable() -> None:
    async def unreachable() -> Client:
        return await Client.connect("127.0.0.1:1")  # nothing listens on port 1

    app = create_app(Settings(), TemporalGateway(unreachable))
    async with _client_for(app) as http:
        response = await http.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["temporal"].startswith("unreachable")


async def test_openapi_and_docs() -> None:
    app = create_app(Settings(), TemporalGateway(lambda: None))  # type: ignore[arg-type]
    async with _client_for(app) as http:
        docs = await http.get("/docs")
        spec = await http.get("/openapi.json")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "/healthz" in spec.json()["paths"]

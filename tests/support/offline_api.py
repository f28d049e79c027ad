"""The API app in process with no Temporal behind it: for tests of what it answers before any
workflow starts (body and path rules, OpenAPI), counting whether it ever tried to reach Temporal."""

from __future__ import annotations

import httpx
from pydantic import SecretStr
from temporalio.client import Client

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from config.settings import ApiSettings, Settings


class NoTemporal:
    """A Temporal connector that always fails, and counts how often it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> Client:
        self.calls += 1
        raise ConnectionError("no Temporal here")


def offline_api(temporal: NoTemporal, admin_token: str) -> httpx.AsyncClient:
    """An HTTP client on the app, its admin token set, Temporal unreachable."""
    app = create_app(Settings(api=ApiSettings(admin_token=SecretStr(admin_token))), TemporalGateway(temporal))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")

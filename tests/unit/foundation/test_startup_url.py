"""The startup script's API URL: the configured public URL, never the caller's Host header."""

from __future__ import annotations

import httpx
from temporalio.client import Client

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from config.settings import ApiSettings, Settings


async def _unreachable() -> Client:
    raise ConnectionError("no Temporal here")


async def test_a_forged_host_header_is_not_baked_in() -> None:
    settings = Settings(api=ApiSettings(public_url="https://fleetpatch.example"))
    app = create_app(settings, TemporalGateway(_unreachable))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        for os in ("linux", "windows"):
            answer = await http.get("/v1/startup/gcp", params={"os": os},
                                    headers={"Host": "attacker.example", "X-Forwarded-Host": "attacker.example"})
            assert answer.status_code == 200
            assert "https://fleetpatch.example" in answer.text
            assert "attacker.example" not in answer.text

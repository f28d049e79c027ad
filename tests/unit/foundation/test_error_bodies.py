"""Error bodies never carry upstream texts: cloud API messages, internal addresses, other tenants."""

from __future__ import annotations

import json

import httpx
from temporalio.client import Client

from clients.api.app import create_app
from clients.api.errors import UPSTREAM_REASON, error_response
from clients.api.gateway import TemporalGateway
from config.settings import Settings


async def test_healthz_names_no_address_or_cause() -> None:
    async def unreachable() -> Client:
        return await Client.connect("127.0.0.1:1")

    app = create_app(Settings(), TemporalGateway(unreachable))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        answer = await http.get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "temporal": "unreachable"}


def test_502_bodies_hold_no_upstream_text() -> None:
    leak = ("Azure Resource Manager answered 404 reading VM web-1 in resource group rg-other: "
            "vmId 7d6c5b4a-3921-4f0e-8d7c-6b5a49382716 (subscription 0b2c3d4e-...)")
    answer = error_response("CloudUnavailable", leak)
    assert answer.status_code == 502
    assert json.loads(answer.body) == {"error": "CloudUnavailable", "reason": UPSTREAM_REASON}
    # Refusals the caller can act on keep their own (fleetpatch-written) reason.
    refused = error_response("IdentityExpired", "the identity token has expired")
    assert refused.status_code == 401 and json.loads(refused.body)["reason"] == "the identity token has expired"

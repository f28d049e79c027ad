"""Reconcile and offboarding bodies are checked at the door: a 400 naming the field, never a 500
(Temporal is unreachable here, so anything that got past the checks would answer 503)."""

from __future__ import annotations

import httpx
import pytest
from temporalio.client import Client

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from config.settings import Settings

ADMIN = {"Authorization": "Bearer admin-token-for-tests-0123456789"}


async def _unreachable() -> Client:
    raise RuntimeError("no Temporal in this test")


def _api() -> httpx.AsyncClient:
    app = create_app(Settings(api={"admin_token": ADMIN["Authorization"].split()[1]}), TemporalGateway(_unreachable))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", headers=ADMIN)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/admin/reconcile", {"account": "acme-prod"}, "account"),
        ("/v1/admin/reconcile", {"provider": "openstack"}, "provider"),
        ("/v1/admin/reconcile", {"provider": "gcp", "account": "../x"}, "account"),
        ("/v1/admin/reconcile", {"dry_run": "perhaps"}, "dry_run"),
        ("/v1/admin/reconcile", {"force": True}, "force"),
        ("/v1/admin/offboard", {"account": "acme-prod"}, "provider"),
        ("/v1/admin/offboard", {"provider": "gcp", "account": "a b"}, "account"),
        ("/v1/admin/instances/remove", {"provider": "gcp", "instance_key": "no-slash"}, "instance_key"),
        ("/v1/admin/instances/remove", {"instance_key": "p/1"}, "provider"),
    ],
)
async def test_bad_bodies_are_400_naming_the_field(path: str, body: dict, field: str) -> None:
    async with _api() as api:
        response = await api.post(path, json=body)
    assert response.status_code == 400, response.text
    answer = response.json()
    named = [d["loc"][-1] for d in answer.get("details", [])] or [answer["reason"].split(":")[0]]
    assert field in named, answer


async def test_admin_token_is_required() -> None:
    async with _api() as api:
        response = await api.post("/v1/admin/reconcile", json={}, headers={"Authorization": "Bearer wrong"})
    assert response.status_code in (401, 403)


async def test_a_good_body_reaches_temporal() -> None:
    async with _api() as api:
        response = await api.post("/v1/admin/reconcile", json={"provider": "gcp", "account": "acme-prod", "dry_run": True})
    assert response.status_code == 503 and response.json()["error"] == "TemporalUnavailable"

"""The codec server routes the Temporal UI calls: admin only, CORS for the UI origin, a round trip."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from config.settings import ApiSettings, CodecSettings, Settings

TOKEN = "admin-Vb7kQ2xN9mL4pR8tW1cZ6yH3jF5dS0aG"
KEY = "codec-key-P4n8Xw2Lq6Rt0Vy3Mb7Kc1Hs9Dj5Fg"
UI = "http://127.0.0.1:8233"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _unreachable() -> Client:
    raise ConnectionError("no Temporal here")


def _api(keys: str | None = KEY) -> httpx.AsyncClient:
    settings = Settings(api=ApiSettings(admin_token=SecretStr(TOKEN)),
                        codec=CodecSettings(keys=keys, ui_origins=[UI]))
    app = create_app(settings, TemporalGateway(_unreachable))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


PLAIN = {"payloads": [{"metadata": {"encoding": _b64(b"json/plain")},
                       "data": _b64(json.dumps({"external_id": "ext-secret-42"}).encode())}]}


async def test_round_trip_as_the_ui_calls_it() -> None:
    async with _api() as api:
        encoded = await api.post("/codec/encode", json=PLAIN, headers={**AUTH, "X-Namespace": "default"})
        assert encoded.status_code == 200
        sealed = encoded.json()["payloads"][0]
        assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
        assert b"ext-secret-42" not in base64.b64decode(sealed["data"])
        decoded = await api.post("/codec/decode", json=encoded.json(), headers=AUTH)
    assert decoded.status_code == 200
    assert decoded.json() == PLAIN


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}])
async def test_refused_without_the_admin_token(headers: dict[str, str]) -> None:
    async with _api() as api:
        for path in ("/codec/encode", "/codec/decode"):
            answer = await api.post(path, json=PLAIN, headers=headers)
            assert answer.status_code in (401, 403)
            assert "ext-secret" not in answer.text


async def test_cors_preflight_for_the_ui_origin_only() -> None:
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type,x-namespace"}
    async with _api() as api:
        allowed = await api.options("/codec/decode", headers={**preflight, "Origin": UI})
        other = await api.options("/codec/decode", headers={**preflight, "Origin": "http://evil.example"})
        posted = await api.post("/codec/decode", json=PLAIN, headers={**AUTH, "Origin": UI})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == UI
    # the UI includes the browser's credentials (an admin's dashboard session) in its codec calls
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in other.headers
    assert posted.headers["access-control-allow-origin"] == UI


@pytest.mark.parametrize("body", [
    b"", b"[]", b'{"payloads": 3}', b'{"payloads": [{"metadata": 5}]}', b"\xff",
    # what the document forbids, the API refuses too: other properties, bytes that are not base64
    b'{"payloads": [], "x": 1}', b'{"payloads": [{"data": "e30", "kind": 1}]}', b'{"payloads": [{"data": "A"}]}',
    b'{"payloads": [{"data": "e3*0"}]}', b'{"payloads": [{"metadata": {"encoding": 7}}]}',
])
async def test_bad_bodies_are_a_400_naming_the_field(body: bytes) -> None:
    async with _api() as api:
        answer = await api.post("/codec/decode", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 400
    assert "payloads" in answer.json()["reason"]


async def test_a_payload_under_an_unknown_key_is_a_400() -> None:
    async with _api() as api:
        sealed = (await api.post("/codec/encode", json=PLAIN, headers=AUTH)).json()
    async with _api(keys="codec-key-other-7Hq2Lm9Xv4Rt1Wn6Bk3Jc8Pd") as other:
        answer = await other.post("/codec/decode", json=sealed, headers=AUTH)
    assert answer.status_code == 400 and "key ring" in answer.json()["reason"]


async def test_no_key_configured_is_a_503() -> None:
    async with _api(keys=None) as api:
        answer = await api.post("/codec/decode", json=PLAIN, headers=AUTH)
    assert answer.status_code == 503

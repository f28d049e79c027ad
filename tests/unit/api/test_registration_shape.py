"""The registration endpoint's answers to bad input, without Temporal: never a 500."""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives.asymmetric import rsa
from temporalio.client import Client

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from config.settings import Settings
from localclouds.gcp.keys import SigningKey


async def _unreachable() -> Client:
    raise ConnectionError("no Temporal here")


def _jwks_file() -> Path:
    """A local key set (not the one the tokens below are signed with): verification stays offline."""
    path = Path(tempfile.gettempdir()) / f"fleetpatch-test-jwks-{os.getpid()}.json"
    if not path.exists():
        key = SigningKey.from_private_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        path.write_text(json.dumps(key.jwks()))
    return path


def _api() -> httpx.AsyncClient:
    settings = Settings(api={"challenge_key": "k" * 32}, gcp={"jwks_file": _jwks_file()})
    app = create_app(settings, TemporalGateway(_unreachable))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _unsigned_gcp_token(project: str = "acme-proj-1", instance: str = "123456789") -> str:
    claims = {
        "iss": "https://accounts.google.com", "aud": "x", "iat": 1, "exp": 2,
        "google": {"compute_engine": {
            "project_id": project, "project_number": 1, "zone": "us-east1-b", "instance_id": instance,
            "instance_name": "vm-1", "instance_creation_timestamp": 1,
        }},
    }
    return f"{_b64({'alg': 'RS256', 'kid': 'k'})}.{_b64(claims)}.{_b64({'sig': 1})}"


_SAMPLES = Path(__file__).resolve().parents[2] / "data" / "conformance" / "azure"
_AZURE_SAMPLE = (_SAMPLES / "coder-eastus-2024" / "signature.b64").read_text().strip()
_AZURE_RESOURCE = (
    "/subscriptions/05e8b285-4ce1-46a3-b4c9-f51ba67d6acc/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
)


def _body(**overrides: Any) -> dict[str, Any]:
    body = {
        "provider": "gcp",
        "identity": {"token": _unsigned_gcp_token()},
        "hostname": "web-1",
        "platform": {"os": "ubuntu", "version": "22.04"},
    }
    body.update(overrides)
    return body


async def test_a_well_shaped_but_unsigned_registration_is_401_before_temporal() -> None:
    async with _api() as api:
        response = await api.post("/v1/registrations", json=_body())
    # Refused by the API's own check: Temporal (unreachable here) is never asked.
    assert response.status_code == 401
    assert response.json()["error"].startswith("Identity")


@pytest.mark.parametrize(
    ("mutate", "status", "error"),
    [
        (lambda b: b.update(provider="openstack"), 400, "BadRequest"),
        (lambda b: b.update(hostname="bad host name"), 400, "BadRequest"),
        (lambda b: b.update(extra="field"), 400, "BadRequest"),
        (lambda b: b["identity"].update(extra="field"), 400, "BadRequest"),
        (lambda b: b.update(identity={"token": "not.a.token"}), 401, "IdentityMalformed"),
        (lambda b: b.update(identity={"token": _unsigned_gcp_token(project="a/b")}), 401, "IdentityMalformed"),
        (lambda b: b.update(provider="azure"), 400, "BadRequest"),
        (lambda b: b.update(provider="vmware", identity={"token": "x", "bios_uuid": "nope"}), 400, "BadRequest"),
        (lambda b: b.update(provider="azure", identity={
            "attested": {"encoding": "pkcs7", "signature": "AAAA"}, "nonce": "A" * 30,
            "resource_id": "/subscriptions/x"}), 401, "IdentityMalformed"),
        (lambda b: b.update(provider="azure", identity={
            "attested": {"encoding": "pkcs7", "signature": _AZURE_SAMPLE}, "nonce": "A" * 30,
            "resource_id": _AZURE_RESOURCE}), 401, "IdentityNonceMismatch"),
    ],
)
async def test_bad_shapes(mutate, status: int, error: str) -> None:  # noqa: ANN001
    body = _body()
    mutate(body)
    async with _api() as api:
        response = await api.post("/v1/registrations", json=body)
    assert (response.status_code, response.json()["error"]) == (status, error), response.text


async def test_duplicate_keys_and_oversize() -> None:
    async with _api() as api:
        dup = await api.post("/v1/registrations", content=b'{"provider":"gcp","provider":"aws"}')
        big = await api.post("/v1/registrations", content=b"[" + b"1," * 40000 + b"1]")
        declared = await api.post(
            "/v1/registrations", content=b"{}", headers={"content-length": str(10**7)}
        )
    assert dup.status_code == 400 and "duplicate" in dup.json()["reason"]
    assert big.status_code == 413
    assert declared.status_code == 413


async def test_malformed_enrollment_ids_are_400_and_unknown_ones_404() -> None:
    async with _api() as api:
        for value in ("nope", "a.b", "ZW5yb2xsL2djcA.short"):
            response = await api.get(f"/v1/enrollments/{value}")
            assert (response.status_code, response.json()["field"]) == (400, "enrollment_id"), value
        response = await api.get("/v1/enrollments/bm90LWFuLWVucm9sbG1lbnQ.abcdefghijklmnopqrstuvwxyz")
        assert response.status_code == 404


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries({"provider": st.sampled_from(["gcp", "azure", "aws", "vmware", "x"]),
                               "identity": json_values, "hostname": st.text(max_size=30),
                               "platform": json_values}),
    )
)
async def test_no_input_is_a_500(body: Any) -> None:
    async with _api() as api:
        response = await api.post("/v1/registrations", json=body)
    assert response.status_code in (400, 401, 403, 413, 503), response.text
    assert "error" in response.json()


@pytest.mark.parametrize("provider", ["gcp", "azure", "aws", "vmware"])
async def test_startup_scripts_are_served(provider: str) -> None:
    async with _api() as api:
        linux = await api.get(f"/v1/startup/{provider}")
        windows = await api.get(f"/v1/startup/{provider}", params={"os": "windows"})
        other = await api.get(f"/v1/startup/{provider}", params={"os": "plan9"})
    assert linux.status_code == 200 and linux.text.startswith("#!") and "http://api" in linux.text
    assert "shellscript" in linux.headers["content-type"]
    assert windows.status_code == 200 and "powershell" in windows.headers["content-type"]
    assert other.status_code == 400

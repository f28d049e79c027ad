"""Proof before work: the API refuses a forged identity with a 401 before it touches Temporal; it
rate-limits unauthenticated routes (429 + Retry-After); it learns vCenter keys at a bounded rate.

Temporal is replaced by a gateway that counts how often it is asked for a client: a refusal must
never ask (so it can start, signal or query nothing), an accepted identity must.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from clients.api.proof import IdentityProof
from clients.api.rate_limit import RateLimiter
from clients.api.vcenter_keys import VcenterKeyCache
from clouds.vmware.token import issue_token
from config.settings import Settings
from contracts.enrollment import LinkCommandResult, TenantLink
from contracts.errors import TransientCloudError
from contracts.providers import Provider
from localclouds.gcp.keys import SigningKey
from localclouds.gcp.tokens import TokenSubject, mint_identity_token

AUDIENCE = "https://fleetpatch.test/v1/registrations"
_GOOGLE = SigningKey.from_private_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
_ATTACKER = SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), _GOOGLE.kid)


class CountingGateway(TemporalGateway):
    """Counts every request for a Temporal client; Temporal itself is unreachable (503)."""

    def __init__(self) -> None:
        self.asked = 0

        async def unreachable() -> Any:
            self.asked += 1
            raise ConnectionError("no Temporal in this test")

        super().__init__(unreachable)


def _token(key: SigningKey, instance: str = "4242", project: str = "acme-prod") -> str:
    subject = TokenSubject(
        project_id=project, project_number=1234, service_account_id="1", service_account_email="sa@x",
        zone="us-east1-b", instance_id=instance, instance_name="web-1", instance_creation_timestamp=1,
    )
    now = int(datetime.now(UTC).timestamp())
    return mint_identity_token(key, subject, audience=AUDIENCE, token_format="full", licenses=False, issued_at=now)


def _body(identity: dict[str, Any], provider: str = "gcp") -> dict[str, Any]:
    return {"provider": provider, "identity": identity, "hostname": "web-1", "platform": {"os": "ubuntu"}}


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(_GOOGLE.jwks()))
    return path


def _api(jwks_file: Path, gateway: TemporalGateway, proof: IdentityProof | None = None, **api: Any) -> httpx.AsyncClient:
    settings = Settings(gcp={"jwks_file": jwks_file, "audience": AUDIENCE}, api={"challenge_key": "c" * 32, **api})
    app = create_app(settings, gateway, proof)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_a_forged_gcp_identity_is_401_and_asks_nothing_of_temporal(jwks_file: Path) -> None:
    gateway = CountingGateway()
    async with _api(jwks_file, gateway) as api:
        forged = await api.post("/v1/registrations", json=_body({"token": _token(_ATTACKER)}))
        assert forged.status_code == 401, forged.text
        assert forged.json()["error"] == "IdentitySignatureInvalid"
        assert gateway.asked == 0
        # The real VM's registration goes on to Temporal (unreachable here: 503).
        real = await api.post("/v1/registrations", json=_body({"token": _token(_GOOGLE)}))
        assert real.status_code == 503, real.text
        assert gateway.asked == 1


async def test_a_token_for_another_audience_is_refused_before_temporal(jwks_file: Path) -> None:
    gateway = CountingGateway()
    token = _token(_GOOGLE)
    settings_audience = "https://someone-else.example/v1/registrations"
    app = create_app(Settings(gcp={"jwks_file": jwks_file, "audience": settings_audience}), gateway)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api:
        response = await api.post("/v1/registrations", json=_body({"token": token}))
    assert (response.status_code, response.json()["error"]) == (401, "IdentityAudienceMismatch")
    assert gateway.asked == 0


async def test_unsigned_ec2_and_azure_identities_are_401_before_temporal(jwks_file: Path) -> None:
    gateway = CountingGateway()
    samples = Path(__file__).resolve().parents[2] / "data" / "conformance" / "azure"
    azure_sig = (samples / "coder-eastus-2024" / "signature.b64").read_text().strip()
    async with _api(jwks_file, gateway) as api:
        nonce = (await api.get("/v1/challenge")).json()["nonce"]
        azure = await api.post("/v1/registrations", json=_body({
            "attested": {"encoding": "pkcs7", "signature": azure_sig}, "nonce": nonce,
            "resource_id": "/subscriptions/05e8b285-4ce1-46a3-b4c9-f51ba67d6acc/resourceGroups/rg/providers/"
                           "Microsoft.Compute/virtualMachines/vm",
        }, provider="azure"))
        ec2 = await api.post("/v1/registrations", json=_body({"rsa2048": "QUJD"}, provider="aws"))
    assert azure.status_code == 401, azure.text
    assert ec2.status_code == 401, ec2.text
    assert gateway.asked == 0


def _vcenter_key() -> tuple[str, str]:
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return pem, public


def _vcenter_token(private_pem: str, vcenter: str = "vc-dc1") -> dict[str, str]:
    token = issue_token(private_pem, vcenter_id=vcenter, instance_uuid="4211aaaa-bbbb-cccc-dddd-eeeeffff0001",
                        customer="acme", now=datetime.now(UTC), ttl=timedelta(hours=1))
    return {"token": token, "bios_uuid": "4211aaaa-bbbb-cccc-dddd-eeeeffff0001"}


async def test_vcenter_tokens_are_checked_against_the_links_keys_before_a_workflow_id(jwks_file: Path) -> None:
    linked_pem, linked_public = _vcenter_key()
    other_pem, _ = _vcenter_key()
    settings = Settings(gcp={"jwks_file": jwks_file, "audience": AUDIENCE})
    looked_up: list[str] = []

    async def keys(vcenter: str) -> list[str] | None:
        looked_up.append(vcenter)
        return [linked_public] if vcenter == "vc-dc1" else None

    gateway = CountingGateway()
    async with _api(jwks_file, gateway, IdentityProof(settings, keys)) as api:
        forged = await api.post("/v1/registrations", json=_body(_vcenter_token(other_pem), provider="vmware"))
        unknown = await api.post("/v1/registrations", json=_body(_vcenter_token(linked_pem, "vc-nowhere"), provider="vmware"))
        assert (forged.status_code, unknown.status_code) == (401, 401), (forged.text, unknown.text)
        assert unknown.json()["error"] == "IdentityKeyUnknown"
        assert gateway.asked == 0
        real = await api.post("/v1/registrations", json=_body(_vcenter_token(linked_pem), provider="vmware"))
        assert real.status_code == 503, real.text
        assert gateway.asked == 1
    assert looked_up == ["vc-dc1", "vc-nowhere", "vc-dc1"]


class _Links:
    """A Temporal client whose LinkAdmin list answers ``links``; counts the listings."""

    def __init__(self, links: list[TenantLink]) -> None:
        self.links = links
        self.listed = 0

    async def execute_workflow(self, *args: Any, **kwargs: Any) -> LinkCommandResult:
        self.listed += 1
        return LinkCommandResult(links=list(self.links))


async def test_the_vcenter_key_cache_lists_links_at_a_bounded_rate() -> None:
    _, public = _vcenter_key()
    links = _Links([TenantLink(provider=Provider.VMWARE, cloud_account="vc-dc1", customer="acme",
                               vcenter_public_keys=[public])])
    clock = [1000.0]
    cache = VcenterKeyCache(TemporalGateway.for_client(links), Settings(), monotonic=lambda: clock[0])  # type: ignore[arg-type]
    assert await cache("vc-dc1") == [public]
    assert links.listed == 1
    # A flood of tokens naming unknown vCenters: at most one listing per min_refresh (15 s).
    for i in range(100):
        assert await cache(f"vc-forged-{i}") is None
    assert links.listed == 1
    clock[0] += 16
    assert await cache("vc-forged-x") is None
    assert links.listed == 2
    assert await cache("vc-dc1") == [public]  # fresh: no listing
    assert links.listed == 2
    clock[0] += 301  # past the ttl: re-read
    assert await cache("vc-dc1") == [public]
    assert links.listed == 3


class _SlowLinks(_Links):
    """A listing that takes a while, or fails."""

    def __init__(self, links: list[TenantLink], *, fail: bool = False) -> None:
        super().__init__(links)
        self.fail = fail

    async def execute_workflow(self, *args: Any, **kwargs: Any) -> LinkCommandResult:
        await asyncio.sleep(0.2)
        if self.fail:
            self.listed += 1
            raise RuntimeError("Temporal is not answering")
        return await super().execute_workflow(*args, **kwargs)


async def test_callers_during_a_refresh_wait_for_it_and_an_unread_cache_is_no_refusal() -> None:
    """VMs of a vCenter that registered while the first listing ran were refused for good (401)
    in a chaos storm: they now wait for that listing; and while the keys were never read, the
    answer is "cannot tell yet" (503, retried), not a refusal."""
    _, public = _vcenter_key()
    link = TenantLink(provider=Provider.VMWARE, cloud_account="vc-dc1", customer="acme", vcenter_public_keys=[public])
    links = _SlowLinks([link])
    cache = VcenterKeyCache(TemporalGateway.for_client(links), Settings())  # type: ignore[arg-type]
    answers = await asyncio.gather(*(cache("vc-dc1") for _ in range(5)))
    assert answers == [[public]] * 5 and links.listed == 1

    down = _SlowLinks([link], fail=True)
    cold = VcenterKeyCache(TemporalGateway.for_client(down), Settings())  # type: ignore[arg-type]
    for _ in range(3):
        with pytest.raises(TransientCloudError):
            await cold("vc-dc1")
    assert down.listed == 1  # still at most one listing per interval


async def test_unauthenticated_routes_are_limited_per_address(jwks_file: Path) -> None:
    async with _api(jwks_file, CountingGateway(), rate_per_address=3, rate_window="60s") as api:
        codes = [(await api.get("/v1/challenge")).status_code for _ in range(3)]
        limited = await api.get("/v1/startup/gcp")
    assert codes == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.json()["error"] == "TooManyRequests"
    assert 1 <= int(limited.headers["retry-after"]) <= 20


async def test_forgeries_do_not_spend_the_real_instances_budget(jwks_file: Path) -> None:
    gateway = CountingGateway()
    async with _api(jwks_file, gateway, rate_per_instance=2, rate_window="60s") as api:
        for _ in range(5):
            forged = await api.post("/v1/registrations", json=_body({"token": _token(_ATTACKER)}))
            assert forged.status_code == 401
        real = [await api.post("/v1/registrations", json=_body({"token": _token(_GOOGLE)})) for _ in range(3)]
    assert [r.status_code for r in real] == [503, 503, 429]
    assert real[2].json()["error"] == "TooManyRequests" and int(real[2].headers["retry-after"]) >= 1
    assert gateway.asked == 2


def test_a_token_bucket_refills_evenly() -> None:
    clock = [0.0]
    limiter = RateLimiter(2, 60, monotonic=lambda: clock[0])
    assert [limiter.retry_after("a"), limiter.retry_after("a")] == [None, None]
    assert limiter.retry_after("a") == 30
    assert limiter.retry_after("b") is None  # another key has its own budget
    clock[0] += 30
    assert limiter.retry_after("a") is None
    assert RateLimiter(0, 60).retry_after("a") is None  # 0: off


def test_the_openapi_document_declares_429_with_retry_after(jwks_file: Path) -> None:
    app = create_app(Settings(), CountingGateway())
    paths = app.openapi()["paths"]
    for path, method in (("/v1/registrations", "post"), ("/v1/challenge", "get"),
                         ("/v1/enrollments/{enrollment_id}", "get"), ("/v1/startup/{provider}", "get")):
        answer = paths[path][method]["responses"]["429"]
        assert "Retry-After" in answer["headers"], path

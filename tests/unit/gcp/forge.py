"""Helpers that build tokens for the GCP verifier tests: valid ones and deliberately bad ones.

Signing is done here by hand (not with pyjwt) so that a test controls every byte: duplicate JSON
keys, odd algorithms, HMAC keyed with a public key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from clouds.gcp.jwks import StaticJwks
from clouds.gcp.verify import verify_gcp_token
from contracts.errors import ErrorType, IdentityRefused
from localclouds.gcp.keys import SigningKey

DATA = Path(__file__).resolve().parents[2] / "data" / "conformance" / "gcp" / "redhat-us-east1-2021"
SAMPLE_TOKEN = (DATA / "token.jwt").read_text().strip()
SAMPLE_JWKS: dict[str, Any] = json.loads((DATA / "jwks-kid-6a8ba565.json").read_text())
SAMPLE_IAT = datetime(2021, 3, 24, 14, 30, 23, tzinfo=UTC)
SAMPLE_AUDIENCE = "https://subscription.rhsm.redhat.com:443/subscription"

AUDIENCE = "https://fleetpatch.example/v1/registrations"
NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def segments(token: str) -> list[str]:
    return token.split(".")


def decode_segment(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def rs256(private_key: rsa.RSAPrivateKey, signing_input: bytes) -> bytes:
    return private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


def hs256(secret: bytes, signing_input: bytes) -> bytes:
    return hmac.new(secret, signing_input, hashlib.sha256).digest()


@dataclass(frozen=True)
class Forge:
    """Mints tokens with a local key (``key``) the way Google's metadata server does."""

    key: SigningKey

    def header(self, **overrides: Any) -> dict[str, Any]:
        return {"alg": "RS256", "kid": self.key.kid, "typ": "JWT", **overrides}

    def claims(self, now: datetime = NOW, **overrides: Any) -> dict[str, Any]:
        iat = int(now.timestamp())
        claims: dict[str, Any] = {
            "aud": AUDIENCE,
            "azp": "104070955682298736149",
            "email": "123456789012-compute@developer.gserviceaccount.com",
            "email_verified": True,
            "exp": iat + 3600,
            "google": {
                "compute_engine": {
                    "instance_creation_timestamp": iat - 600,
                    "instance_id": "4520031799277581759",
                    "instance_name": "web-1",
                    "project_id": "acme-prod-123",
                    "project_number": 123456789012,
                    "zone": "europe-west1-b",
                }
            },
            "iat": iat,
            "iss": "https://accounts.google.com",
            "sub": "104070955682298736149",
        }
        claims.update(overrides)
        return claims

    def sign_raw(
        self,
        header: bytes | str,
        payload: bytes | str,
        *,
        private_key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        """Sign exact header/payload JSON text (bytes), RS256."""
        h = b64url(header.encode() if isinstance(header, str) else header)
        p = b64url(payload.encode() if isinstance(payload, str) else payload)
        signing_input = f"{h}.{p}".encode()
        return f"{h}.{p}.{b64url(rs256(private_key or self.key.private_key, signing_input))}"

    def token(
        self,
        now: datetime = NOW,
        *,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
        private_key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        return self.sign_raw(
            json.dumps(header or self.header()),
            json.dumps(self.claims(now) if claims is None else claims),
            private_key=private_key,
        )


def refusal(token: str, keys: Any, *, audience: str = AUDIENCE, now: Any = NOW) -> ErrorType:
    with pytest.raises(IdentityRefused) as refused:
        verify_gcp_token(token, keys=keys, audience=audience, now=now)
    return refused.value.type


class SpyKeys:
    """A key source that records every lookup: proves a refusal came before any key use."""

    def __init__(self, inner: StaticJwks) -> None:
        self.inner = inner
        self.asked: list[str] = []

    def get_key(self, kid: str) -> RSAPublicKey | None:
        self.asked.append(kid)
        return self.inner.get_key(kid)

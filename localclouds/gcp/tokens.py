"""Instance identity tokens exactly as Google's metadata server mints them.

``format=standard``: ``aud, azp, exp, iat, iss, sub`` (plus ``email``/``email_verified`` for the
default service account). ``format=full`` adds ``google.compute_engine`` with the project, zone
and instance; ``licenses=TRUE`` adds ``license_id`` to it. Tokens live one hour. Claims are written
in sorted order and signed RS256 with the header ``{"alg","kid","typ"}``, like Google's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import jwt

from localclouds.gcp.keys import SigningKey

ISSUER = "https://accounts.google.com"
LIFETIME_SECONDS = 3600

TokenFormat = Literal["standard", "full"]


@dataclass(frozen=True)
class TokenSubject:
    """What the token says about the VM: filled from the instance store."""

    project_id: str
    project_number: int
    service_account_id: str  # the default service account's unique id: sub and azp
    service_account_email: str
    zone: str
    instance_id: str
    instance_name: str
    instance_creation_timestamp: int
    license_ids: tuple[str, ...] = ()


def mint_identity_token(
    key: SigningKey,
    subject: TokenSubject,
    *,
    audience: str,
    token_format: TokenFormat,
    licenses: bool,
    issued_at: int,
) -> str:
    claims: dict[str, Any] = {
        "aud": audience,
        "azp": subject.service_account_id,
        "email": subject.service_account_email,
        "email_verified": True,
        "exp": issued_at + LIFETIME_SECONDS,
        "iat": issued_at,
        "iss": ISSUER,
        "sub": subject.service_account_id,
    }
    if token_format == "full":
        compute_engine: dict[str, Any] = {
            "instance_creation_timestamp": subject.instance_creation_timestamp,
            "instance_id": subject.instance_id,
            "instance_name": subject.instance_name,
            "project_id": subject.project_id,
            "project_number": subject.project_number,
            "zone": subject.zone,
        }
        if licenses:
            compute_engine["license_id"] = list(subject.license_ids)
        claims["google"] = {"compute_engine": dict(sorted(compute_engine.items()))}
    ordered = dict(sorted(claims.items()))
    return jwt.encode(ordered, key.private_key, algorithm="RS256", headers={"kid": key.kid})

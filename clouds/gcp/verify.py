"""Verify a GCP instance identity token (``format=full``) and say which VM it proves.

Pure: keys come from a :class:`~clouds.gcp.jwks.KeySource` and the clock is passed in, so the
same function serves the gcp worker, ``fleetpatch verify`` and tests. Every refusal is
``IdentityRefused`` with one of these types, checked in this order:

1. shape (size, segments, base64url, JSON, duplicate keys) -> ``IdentityMalformed``;
2. ``alg`` from the header, before any key is looked up: only ``RS256`` ->
   ``IdentityAlgorithmRefused`` (so ``none``, HS256 keyed with Google's public key, RS384, ES256,
   PS256 never reach a key);
3. ``kid`` unknown to the key source (after its one rate-limited refresh) -> ``IdentityKeyUnknown``;
4. RSASSA-PKCS1-v1_5 SHA-256 signature -> ``IdentitySignatureInvalid``;
5. ``iss`` is Google -> ``IdentityIssuerMismatch``; ``aud`` is exactly the configured audience
   (a string, or a one-element list holding it) -> ``IdentityAudienceMismatch``;
6. time, with :data:`CLOCK_SKEW` (60 s) of tolerance for clocks ahead of ours:
   ``exp`` <= now -> ``IdentityExpired``; ``iat`` (or ``nbf``) after now + skew ->
   ``IdentityNotYetValid``; ``exp`` later than now + 1 h + skew, or a lifetime ``exp - iat``
   over 1 h -> ``IdentityNotYetValid`` (Google's tokens live exactly 1 h, so such a token was
   minted for a time that has not come, or by something that is not Google's metadata server);
   ``iat`` older than ``max_age`` -> ``IdentityExpired``. Missing ``exp``/``iat`` ->
   ``IdentityClaimsMissing``;
7. ``google.compute_engine`` claims present and well formed -> ``IdentityClaimsMissing`` /
   ``IdentityMalformed``.

A key source that cannot reach its keys raises ``TransientCloudError`` (not a verdict on the
token); nothing else leaves this module for any input string.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from clouds.gcp.claims import compute_engine_claims
from clouds.gcp.jwks import KeySource
from clouds.gcp.token import malformed, parse_compact_jws
from contracts.errors import ErrorType, IdentityRefused
from contracts.identity import VerifiedIdentity
from contracts.providers import Provider

ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
ALGORITHM = "RS256"
#: Tolerance for a VM clock (or Google's) running ahead of ours.
CLOCK_SKEW = timedelta(seconds=60)
#: Google issues instance identity tokens for exactly one hour.
MAX_LIFETIME = timedelta(hours=1)
DEFAULT_MAX_AGE = timedelta(minutes=10)
_MAX_KID_LENGTH = 256


def verify_gcp_token(
    token: str,
    *,
    keys: KeySource,
    audience: str,
    now: datetime,
    max_age: timedelta = DEFAULT_MAX_AGE,
) -> VerifiedIdentity:
    """Verify ``token`` at time ``now`` (timezone-aware) for ``audience`` (exact match).

    Raises ``IdentityRefused`` for any token that is not a fresh, Google-signed, format=full
    identity token for this audience. ``ValueError`` only for caller mistakes (empty audience,
    naive ``now``), never for token content.
    """
    if not isinstance(audience, str) or not audience:
        raise ValueError("the configured audience must be a non-empty string")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")

    parsed = parse_compact_jws(token)
    kid = _check_header(parsed.header)
    key = keys.get_key(kid)
    if not isinstance(key, RSAPublicKey):
        raise IdentityRefused(ErrorType.IDENTITY_KEY_UNKNOWN, f"no Google key with kid {kid!r}")
    _check_signature(key, parsed.signing_input, parsed.signature)

    claims = parsed.payload
    _check_issuer(claims)
    _check_audience(claims, audience)
    issued_at = _check_times(claims, now, max_age)
    ce = compute_engine_claims(claims)

    return VerifiedIdentity(
        provider=Provider.GCP,
        cloud_account=ce.project_id,
        instance_id=ce.instance_id,
        issued_at=issued_at,
        instance_name=ce.instance_name,
        region=ce.zone,
        evidence={
            "kid": kid,
            "alg": ALGORITHM,
            "project_number": str(ce.project_number),
            "token_sha256": hashlib.sha256(token.encode("ascii")).hexdigest(),
        },
    )


def peek_gcp_instance_key(token: str) -> tuple[str, str]:
    """``(project_id, instance_id)`` read WITHOUT verification, so the API can name the
    enrollment workflow before the gcp worker verifies. Never trust it for anything else.
    Bad shape -> ``IdentityRefused(IdentityMalformed)``; no compute claims ->
    ``IdentityRefused(IdentityClaimsMissing)``."""
    parsed = parse_compact_jws(token)
    ce = compute_engine_claims(parsed.payload)
    return ce.project_id, ce.instance_id


def _check_header(header: dict[str, Any]) -> str:
    """The header's decision comes first: only RS256 with a kid goes any further."""
    alg = header.get("alg")
    if alg != ALGORITHM:
        shown = alg if isinstance(alg, str) and len(alg) <= 32 else type(alg).__name__
        raise IdentityRefused(
            ErrorType.IDENTITY_ALGORITHM_REFUSED, f"algorithm {shown!r} refused: only RS256"
        )
    if "crit" in header:
        malformed("header names critical extensions, none are understood")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > _MAX_KID_LENGTH:
        malformed("header has no usable kid")
    return kid


def _check_signature(key: RSAPublicKey, signing_input: bytes, signature: bytes) -> None:
    try:
        key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise IdentityRefused(
            ErrorType.IDENTITY_SIGNATURE_INVALID, "signature does not verify with the Google key"
        ) from exc


def _check_issuer(claims: dict[str, Any]) -> None:
    iss = claims.get("iss")
    if not isinstance(iss, str) or iss not in ISSUERS:
        raise IdentityRefused(ErrorType.IDENTITY_ISSUER_MISMATCH, "issuer is not Google")


def _check_audience(claims: dict[str, Any], audience: str) -> None:
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    if not isinstance(aud, str) or aud != audience:
        raise IdentityRefused(
            ErrorType.IDENTITY_AUDIENCE_MISMATCH,
            f"token audience is not {audience!r}",
        )


def _check_times(claims: dict[str, Any], now: datetime, max_age: timedelta) -> datetime:
    """Returns ``iat`` as an aware datetime once every time rule holds."""
    exp = _timestamp(claims, "exp")
    iat = _timestamp(claims, "iat")
    if exp <= now:
        raise IdentityRefused(ErrorType.IDENTITY_EXPIRED, f"token expired at {exp.isoformat()}")
    if iat > now + CLOCK_SKEW:
        raise IdentityRefused(
            ErrorType.IDENTITY_NOT_YET_VALID, f"token issued in the future ({iat.isoformat()})"
        )
    if "nbf" in claims and _timestamp(claims, "nbf") > now + CLOCK_SKEW:
        raise IdentityRefused(ErrorType.IDENTITY_NOT_YET_VALID, "token is not valid yet (nbf)")
    if exp > now + MAX_LIFETIME + CLOCK_SKEW or exp - iat > MAX_LIFETIME:
        raise IdentityRefused(
            ErrorType.IDENTITY_NOT_YET_VALID,
            "token expires more than 1 h ahead: not a Google instance identity token for now",
        )
    if now - iat > max_age:
        raise IdentityRefused(
            ErrorType.IDENTITY_EXPIRED, f"token is older than {int(max_age.total_seconds())} s"
        )
    return iat


def _timestamp(claims: dict[str, Any], name: str) -> datetime:
    if name not in claims:
        raise IdentityRefused(ErrorType.IDENTITY_CLAIMS_MISSING, f"claim {name} is required")
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        malformed(f"claim {name} is not a number")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        malformed(f"claim {name} is out of range")

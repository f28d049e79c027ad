"""Tokens an attacker (or a broken VM) might send: algorithm, key, signature and shape.

Each is refused with its own error type.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from clouds.gcp.jwks import StaticJwks
from clouds.gcp.token import MAX_TOKEN_BYTES
from clouds.gcp.verify import verify_gcp_token
from contracts.errors import ErrorType
from tests.unit.gcp.forge import (
    AUDIENCE,
    NOW,
    SAMPLE_AUDIENCE,
    SAMPLE_IAT,
    SAMPLE_JWKS,
    SAMPLE_TOKEN,
    Forge,
    SpyKeys,
    b64url,
    b64url_json,
    decode_segment,
    hs256,
    refusal,
    segments,
)


def test_a_valid_local_token_is_accepted(forge: Forge, local_keys: StaticJwks) -> None:
    identity = verify_gcp_token(forge.token(), keys=local_keys, audience=AUDIENCE, now=NOW)
    assert (identity.cloud_account, identity.instance_id) == (
        "acme-prod-123",
        "4520031799277581759",
    )


# --- algorithm: decided from the header before any key is used -------------------------------


def _sample_with_header(header: dict[str, Any], signature: bytes) -> str:
    _, payload, _ = segments(SAMPLE_TOKEN)
    return f"{b64url_json(header)}.{payload}.{b64url(signature) if signature else ''}"


def _google_public_key_forms() -> dict[str, bytes]:
    key = StaticJwks(SAMPLE_JWKS).get_key("6a8ba5652a7044121d4fedac8f14d14c54e4895b")
    assert key is not None
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk = SAMPLE_JWKS["keys"][0]
    return {
        "pem": pem,
        "pem-pkcs1": key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        "jwk-json": json.dumps(jwk).encode(),
        "jwk-compact": json.dumps(jwk, separators=(",", ":")).encode(),
        "jwk-n": jwk["n"].encode(),
    }


@pytest.mark.parametrize("form", sorted(_google_public_key_forms()))
def test_hs256_keyed_with_googles_public_key_is_refused(google_keys: StaticJwks, form: str) -> None:
    header = {"alg": "HS256", "kid": "6a8ba5652a7044121d4fedac8f14d14c54e4895b", "typ": "JWT"}
    h, p = b64url_json(header), segments(SAMPLE_TOKEN)[1]
    forged = f"{h}.{p}.{b64url(hs256(_google_public_key_forms()[form], f'{h}.{p}'.encode()))}"
    spy = SpyKeys(google_keys)
    assert (
        refusal(forged, spy, audience=SAMPLE_AUDIENCE, now=SAMPLE_IAT)
        is ErrorType.IDENTITY_ALGORITHM_REFUSED
    )
    assert spy.asked == []


@pytest.mark.parametrize(
    "alg",
    ["none", "None", "NONE", "RS384", "RS512", "PS256", "ES256", "EdDSA", "rs256", "RS256 ", ""],
)
def test_other_algorithms_are_refused_before_key_use(google_keys: StaticJwks, alg: str) -> None:
    token = _sample_with_header(
        {"alg": alg, "kid": "6a8ba5652a7044121d4fedac8f14d14c54e4895b", "typ": "JWT"},
        b"\x01" * 256,
    )
    spy = SpyKeys(google_keys)
    kind = refusal(token, spy, audience=SAMPLE_AUDIENCE, now=SAMPLE_IAT)
    assert kind is ErrorType.IDENTITY_ALGORITHM_REFUSED
    assert spy.asked == []


def test_unsigned_alg_none_token_is_refused(google_keys: StaticJwks) -> None:
    # The classic "alg":"none" token has an empty third segment: refused before the header
    # is even considered (an empty segment is not a signature), and no key is looked up.
    token = _sample_with_header({"alg": "none", "typ": "JWT"}, b"")
    assert token.endswith(".")
    spy = SpyKeys(google_keys)
    kind = refusal(token, spy, audience=SAMPLE_AUDIENCE, now=SAMPLE_IAT)
    assert kind is ErrorType.IDENTITY_MALFORMED
    assert spy.asked == []


@pytest.mark.parametrize("alg", [None, ["RS256"], {"RS256": 1}, 256])
def test_non_string_algorithms_are_refused(forge: Forge, local_keys: StaticJwks, alg: Any) -> None:
    header = {"kid": forge.key.kid, "typ": "JWT"} if alg is None else forge.header(alg=alg)
    assert refusal(forge.token(header=header), local_keys) is ErrorType.IDENTITY_ALGORITHM_REFUSED


# --- keys and signatures ----------------------------------------------------------------------


def test_unknown_kid_is_refused(forge: Forge, local_keys: StaticJwks) -> None:
    token = forge.token(header=forge.header(kid="0" * 40))
    assert refusal(token, local_keys) is ErrorType.IDENTITY_KEY_UNKNOWN


@pytest.mark.parametrize("kid", [None, "", 7, ["x"], "k" * 300])
def test_unusable_kid_is_malformed(forge: Forge, local_keys: StaticJwks, kid: Any) -> None:
    header = {"alg": "RS256", "typ": "JWT"} if kid is None else forge.header(kid=kid)
    assert refusal(forge.token(header=header), local_keys) is ErrorType.IDENTITY_MALFORMED


def test_crit_header_is_refused(forge: Forge, local_keys: StaticJwks) -> None:
    token = forge.token(header=forge.header(crit=["b64"], b64=False))
    assert refusal(token, local_keys) is ErrorType.IDENTITY_MALFORMED


def test_signature_by_another_key_is_refused(
    forge: Forge, local_keys: StaticJwks, attacker_key: rsa.RSAPrivateKey
) -> None:
    token = forge.token(private_key=attacker_key)
    assert refusal(token, local_keys) is ErrorType.IDENTITY_SIGNATURE_INVALID


def test_local_token_claiming_googles_kid_is_refused(forge: Forge, google_keys: StaticJwks) -> None:
    token = forge.token(header=forge.header(kid="6a8ba5652a7044121d4fedac8f14d14c54e4895b"))
    assert refusal(token, google_keys) is ErrorType.IDENTITY_SIGNATURE_INVALID


def test_sample_with_a_changed_payload_is_refused(google_keys: StaticJwks) -> None:
    h, p, s = segments(SAMPLE_TOKEN)
    claims = decode_segment(p)
    claims["google"]["compute_engine"]["project_id"] = "victim-project-1"
    forged = f"{h}.{b64url_json(claims)}.{s}"
    kind = refusal(forged, google_keys, audience=SAMPLE_AUDIENCE, now=SAMPLE_IAT)
    assert kind is ErrorType.IDENTITY_SIGNATURE_INVALID


@pytest.mark.parametrize(
    "signature",
    [
        lambda sig: sig[:-1] + bytes([sig[-1] ^ 1]),  # one bit flipped
        lambda sig: bytes([sig[0] ^ 0x80]) + sig[1:],
        lambda sig: sig[:-8],  # truncated
        lambda sig: sig + b"\x00" * 3,  # extended
        lambda sig: b"\x00" * len(sig),
        lambda sig: b"\xff" * len(sig),  # larger than the modulus
        lambda sig: b"\x01",
    ],
)
def test_bad_signature_bytes_are_refused(
    google_keys: StaticJwks, signature: Callable[[bytes], bytes]
) -> None:
    h, p, s = segments(SAMPLE_TOKEN)
    forged = b64url(signature(base64.urlsafe_b64decode(s + "==")))
    kind = refusal(f"{h}.{p}.{forged}", google_keys, audience=SAMPLE_AUDIENCE, now=SAMPLE_IAT)
    assert kind is ErrorType.IDENTITY_SIGNATURE_INVALID


# --- shape ------------------------------------------------------------------------------------


def test_oversized_token_is_refused(forge: Forge, local_keys: StaticJwks) -> None:
    # Properly signed, only too large: the size check must still refuse it.
    claims = forge.claims(padding="p" * MAX_TOKEN_BYTES)
    token = forge.token(claims=claims)
    assert len(token) > MAX_TOKEN_BYTES
    assert refusal(token, local_keys) is ErrorType.IDENTITY_MALFORMED


def test_just_under_the_size_limit_is_accepted(forge: Forge, local_keys: StaticJwks) -> None:
    base = len(forge.token())
    claims = forge.claims(padding="p" * ((MAX_TOKEN_BYTES - base) * 3 // 4 - 16))
    token = forge.token(claims=claims)
    assert MAX_TOKEN_BYTES - 64 < len(token) <= MAX_TOKEN_BYTES
    assert verify_gcp_token(token, keys=local_keys, audience=AUDIENCE, now=NOW).instance_id


def _with_segment(token: str, index: int, value: str) -> str:
    parts = segments(token)
    parts[index] = value
    return ".".join(parts)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace(".", "", 1),  # two segments
        lambda t: t + ".",  # four segments
        lambda t: t + ".AAAA",
        lambda t: _with_segment(t, 2, ""),  # empty signature
        lambda t: _with_segment(t, 0, ""),
        lambda t: _with_segment(t, 1, segments(t)[1] + "="),  # padding
        lambda t: _with_segment(t, 1, segments(t)[1][:-1] + "+"),  # base64, not base64url
        lambda t: _with_segment(t, 0, segments(t)[0] + "!"),
        lambda t: _with_segment(t, 1, segments(t)[1] + "A"),  # length % 4 == 1
        lambda t: " " + t,
        lambda t: t + "\n",
        lambda t: t.replace("e", "é", 1),
        lambda t: _with_segment(t, 1, b64url(b"\xff\xfe not utf-8")),
        lambda t: _with_segment(t, 1, b64url(b"not json")),
        lambda t: _with_segment(t, 1, b64url(b"[1, 2]")),
        lambda t: _with_segment(t, 0, b64url(b'"RS256"')),
        lambda t: _with_segment(t, 1, b64url(b'{"exp": NaN}')),
        lambda t: _with_segment(t, 1, b64url(b"[" * 5000 + b"]" * 5000)),
        lambda t: _with_segment(t, 1, b64url(b'{"exp": ' + b"9" * 5000 + b"}")),
    ],
)
def test_bad_shapes_are_malformed(
    forge: Forge, local_keys: StaticJwks, mangle: Callable[[str], str]
) -> None:
    assert refusal(mangle(forge.token()), local_keys) is ErrorType.IDENTITY_MALFORMED


def test_non_canonical_base64_spare_bits_are_refused(google_keys: StaticJwks) -> None:
    # The sample's signature is 256 bytes: its last base64url character carries 4 spare bits.
    # Setting them decodes to the same bytes; the verifier must still refuse the altered string.
    h, p, s = segments(SAMPLE_TOKEN)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(s[-1])
    assert last % 16 == 0  # canonical: spare bits clear
    twin = f"{h}.{p}.{s[:-1]}{alphabet[last + 1]}"
    kind = refusal(twin, google_keys, audience=SAMPLE_AUDIENCE, now=SAMPLE_IAT)
    assert kind is ErrorType.IDENTITY_MALFORMED


@pytest.mark.parametrize("token", [None, b"abc.def.ghi", 12, ["a", "b", "c"]])
def test_non_string_tokens_are_malformed(local_keys: StaticJwks, token: Any) -> None:
    assert refusal(token, local_keys) is ErrorType.IDENTITY_MALFORMED


def test_duplicate_keys_in_payload_are_refused(forge: Forge, local_keys: StaticJwks) -> None:
    body = json.dumps(forge.claims())[:-1] + ', "aud": "https://evil.example"}'
    token = forge.sign_raw(json.dumps(forge.header()), body)
    assert refusal(token, local_keys) is ErrorType.IDENTITY_MALFORMED


def test_duplicate_keys_in_header_are_refused(forge: Forge, local_keys: StaticJwks) -> None:
    header = f'{{"alg": "none", "alg": "RS256", "kid": "{forge.key.kid}", "typ": "JWT"}}'
    token = forge.sign_raw(header, json.dumps(forge.claims()))
    assert refusal(token, local_keys) is ErrorType.IDENTITY_MALFORMED


def test_duplicate_keys_nested_in_compute_engine_are_refused(
    forge: Forge, local_keys: StaticJwks
) -> None:
    body = json.dumps(forge.claims()).replace(
        '"project_id": "acme-prod-123"',
        '"project_id": "acme-prod-123", "project_id": "victim-proj-1"',
    )
    assert "victim-proj-1" in body
    token = forge.sign_raw(json.dumps(forge.header()), body)
    assert refusal(token, local_keys) is ErrorType.IDENTITY_MALFORMED

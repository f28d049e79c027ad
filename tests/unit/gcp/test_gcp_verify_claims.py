"""Validly signed tokens whose claims are wrong: issuer, audience, time, compute claims.

Each is refused with its own error type.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from clouds.gcp.claims import REQUIRED_FIELDS
from clouds.gcp.jwks import StaticJwks
from clouds.gcp.verify import verify_gcp_token
from contracts.errors import ErrorType
from localclouds.gcp.tokens import mint_identity_token
from tests.unit.gcp.forge import (
    AUDIENCE,
    NOW,
    Forge,
    decode_segment,
    refusal,
    segments,
)

# --- issuer and audience ----------------------------------------------------------------------


@pytest.mark.parametrize("iss", ["accounts.google.com", "https://accounts.google.com"])
def test_both_google_issuers_are_accepted(forge: Forge, local_keys: StaticJwks, iss: str) -> None:
    token = forge.token(claims=forge.claims(iss=iss))
    assert verify_gcp_token(token, keys=local_keys, audience=AUDIENCE, now=NOW).instance_id


@pytest.mark.parametrize(
    "iss",
    [
        "https://evil.example",
        "http://accounts.google.com",
        "https://accounts.google.com/",
        "https://accounts.google.com.evil.example",
        "",
        None,
        ["https://accounts.google.com"],
    ],
)
def test_wrong_issuer_is_refused(forge: Forge, local_keys: StaticJwks, iss: Any) -> None:
    claims = forge.claims(iss=iss)
    if iss is None:
        del claims["iss"]
    assert refusal(forge.token(claims=claims), local_keys) is ErrorType.IDENTITY_ISSUER_MISMATCH


def test_aud_as_exactly_one_element_list_is_accepted(forge: Forge, local_keys: StaticJwks) -> None:
    token = forge.token(claims=forge.claims(aud=[AUDIENCE]))
    assert verify_gcp_token(token, keys=local_keys, audience=AUDIENCE, now=NOW).instance_id


@pytest.mark.parametrize(
    "aud",
    [
        "https://other.example/v1/registrations",  # wrong
        AUDIENCE + "/extra",  # configured audience as a prefix of the token's
        AUDIENCE + "x",
        "https://evil.example/?" + AUDIENCE,  # as a suffix
        "x" + AUDIENCE,
        AUDIENCE[:-1],  # token's audience a prefix of ours
        AUDIENCE[1:],  # and a suffix
        AUDIENCE.upper(),
        AUDIENCE + " ",
        "",
        [AUDIENCE, "https://other.example"],  # lists other than exactly [audience]
        ["https://other.example", AUDIENCE],
        [AUDIENCE, AUDIENCE],
        [],
        [[AUDIENCE]],
        {"aud": AUDIENCE},
        None,
    ],
)
def test_wrong_audience_is_refused(forge: Forge, local_keys: StaticJwks, aud: Any) -> None:
    claims = forge.claims(aud=aud)
    if aud is None:
        del claims["aud"]
    assert refusal(forge.token(claims=claims), local_keys) is ErrorType.IDENTITY_AUDIENCE_MISMATCH


# --- time -------------------------------------------------------------------------------------


def _timed(forge: Forge, iat_offset: int, lifetime: int = 3600) -> str:
    iat = int(NOW.timestamp()) + iat_offset
    return forge.token(claims=forge.claims(iat=iat, exp=iat + lifetime))


@pytest.mark.parametrize(
    ("iat_offset", "lifetime", "expected"),
    [
        (-3600, 3600, ErrorType.IDENTITY_EXPIRED),  # exp == now
        (-7200, 3600, ErrorType.IDENTITY_EXPIRED),  # expired an hour ago
        (-601, 3600, ErrorType.IDENTITY_EXPIRED),  # valid, but older than max_age
        (0, 7200, ErrorType.IDENTITY_NOT_YET_VALID),  # exp over 1 h ahead
        (-600, 4000, ErrorType.IDENTITY_NOT_YET_VALID),  # lifetime over 1 h
        (0, 10**9, ErrorType.IDENTITY_NOT_YET_VALID),
        (61, 3600, ErrorType.IDENTITY_NOT_YET_VALID),  # iat beyond the 60 s skew
        (3600, 3600, ErrorType.IDENTITY_NOT_YET_VALID),
    ],
)
def test_time_rules(
    forge: Forge, local_keys: StaticJwks, iat_offset: int, lifetime: int, expected: ErrorType
) -> None:
    assert refusal(_timed(forge, iat_offset, lifetime), local_keys) is expected


@pytest.mark.parametrize(("iat_offset", "lifetime"), [(0, 3600), (60, 3600), (-600, 3600), (0, 60)])
def test_time_rules_accept(
    forge: Forge, local_keys: StaticJwks, iat_offset: int, lifetime: int
) -> None:
    identity = verify_gcp_token(
        _timed(forge, iat_offset, lifetime), keys=local_keys, audience=AUDIENCE, now=NOW
    )
    assert identity.issued_at == NOW + timedelta(seconds=iat_offset)


def test_nbf_in_the_future_is_refused(forge: Forge, local_keys: StaticJwks) -> None:
    claims = forge.claims(nbf=int(NOW.timestamp()) + 120)
    assert refusal(forge.token(claims=claims), local_keys) is ErrorType.IDENTITY_NOT_YET_VALID


@pytest.mark.parametrize("name", ["exp", "iat"])
def test_missing_exp_or_iat_is_refused(forge: Forge, local_keys: StaticJwks, name: str) -> None:
    claims = forge.claims()
    del claims[name]
    assert refusal(forge.token(claims=claims), local_keys) is ErrorType.IDENTITY_CLAIMS_MISSING


@pytest.mark.parametrize("value", ["1767000000", True, None, 1e400, -1e300, [1]])
def test_non_numeric_times_are_malformed(forge: Forge, local_keys: StaticJwks, value: Any) -> None:
    claims = forge.claims(exp=value)
    kind = refusal(forge.token(claims=claims), local_keys)
    assert kind is ErrorType.IDENTITY_MALFORMED


# --- google.compute_engine claims --------------------------------------------------------------


def test_format_standard_token_is_refused(forge: Forge, local_keys: StaticJwks) -> None:
    from localclouds.gcp.tokens import TokenSubject

    subject = TokenSubject(
        project_id="acme-prod-123",
        project_number=123456789012,
        service_account_id="1" * 21,
        service_account_email="123456789012-compute@developer.gserviceaccount.com",
        zone="europe-west1-b",
        instance_id="4520031799277581759",
        instance_name="web-1",
        instance_creation_timestamp=int(NOW.timestamp()) - 600,
    )
    standard = mint_identity_token(
        forge.key,
        subject,
        audience=AUDIENCE,
        token_format="standard",
        licenses=False,
        issued_at=int(NOW.timestamp()),
    )
    assert "google" not in decode_segment(segments(standard)[1])
    assert refusal(standard, local_keys) is ErrorType.IDENTITY_CLAIMS_MISSING


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
def test_each_missing_compute_engine_field_is_refused(
    forge: Forge, local_keys: StaticJwks, field: str
) -> None:
    claims = forge.claims()
    del claims["google"]["compute_engine"][field]
    assert refusal(forge.token(claims=claims), local_keys) is ErrorType.IDENTITY_CLAIMS_MISSING


def test_empty_google_claims_are_refused(forge: Forge, local_keys: StaticJwks) -> None:
    claims = forge.claims(google={})
    assert refusal(forge.token(claims=claims), local_keys) is ErrorType.IDENTITY_CLAIMS_MISSING


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("project_id", "acme/../other"),
        ("project_id", ""),
        ("project_id", 42),
        ("instance_id", 4520031799277581759),
        ("instance_id", "45200-31799"),
        ("instance_id", "0123"),
        ("instance_name", "Web_1"),
        ("zone", "europe-west1-b/../x"),
        ("project_number", "123456789012"),
        ("project_number", True),
        ("instance_creation_timestamp", 1.5),
    ],
)
def test_ill_typed_compute_engine_fields_are_malformed(
    forge: Forge, local_keys: StaticJwks, field: str, value: Any
) -> None:
    claims = forge.claims()
    claims["google"]["compute_engine"][field] = value
    assert refusal(forge.token(claims=claims), local_keys) is ErrorType.IDENTITY_MALFORMED


@pytest.mark.parametrize("google", ["compute_engine", ["x"], {"compute_engine": "x"}])
def test_non_object_google_claims_are_malformed(
    forge: Forge, local_keys: StaticJwks, google: Any
) -> None:
    claims = forge.claims(google=google)
    assert refusal(forge.token(claims=claims), local_keys) is ErrorType.IDENTITY_MALFORMED

"""The production sample (a real format=full token from 2021) with Google's key for its kid."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from clouds.gcp.jwks import StaticJwks
from clouds.gcp.verify import peek_gcp_instance_key, verify_gcp_token
from contracts.errors import ErrorType, IdentityRefused
from contracts.providers import Provider
from tests.unit.gcp.forge import (
    SAMPLE_AUDIENCE,
    SAMPLE_IAT,
    SAMPLE_TOKEN,
    b64url_json,
    decode_segment,
)


def test_sample_is_accepted_inside_its_validity(google_keys: StaticJwks) -> None:
    identity = verify_gcp_token(
        SAMPLE_TOKEN,
        keys=google_keys,
        audience=SAMPLE_AUDIENCE,
        now=SAMPLE_IAT + timedelta(minutes=2),
    )
    claims = decode_segment(SAMPLE_TOKEN.split(".")[1])["google"]["compute_engine"]
    assert identity.provider is Provider.GCP
    assert identity.cloud_account == claims["project_id"] == "fair-kingdom-308514"
    assert identity.instance_id == claims["instance_id"] == "2589221140676718026"
    assert identity.instance_name == "instance-1"
    assert identity.region == "us-east1-b"
    assert identity.issued_at == SAMPLE_IAT
    assert identity.instance_key == "fair-kingdom-308514/2589221140676718026"
    assert identity.evidence == {
        "kid": "6a8ba5652a7044121d4fedac8f14d14c54e4895b",
        "alg": "RS256",
        "project_number": str(claims["project_number"]),
        "token_sha256": hashlib.sha256(SAMPLE_TOKEN.encode()).hexdigest(),
    }
    assert SAMPLE_TOKEN not in repr(identity)


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(seconds=-59), timedelta(minutes=10)])
def test_sample_edges_of_the_window_are_accepted(
    google_keys: StaticJwks, offset: timedelta
) -> None:
    # iat up to 60 s ahead of our clock (skew) and up to max_age (10 min) old.
    identity = verify_gcp_token(
        SAMPLE_TOKEN, keys=google_keys, audience=SAMPLE_AUDIENCE, now=SAMPLE_IAT + offset
    )
    assert identity.instance_id == "2589221140676718026"


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(seconds=-61), ErrorType.IDENTITY_NOT_YET_VALID),
        (timedelta(minutes=10, seconds=1), ErrorType.IDENTITY_EXPIRED),
        (timedelta(hours=1), ErrorType.IDENTITY_EXPIRED),
        (timedelta(days=365 * 5), ErrorType.IDENTITY_EXPIRED),
    ],
)
def test_sample_outside_its_window_is_refused(
    google_keys: StaticJwks, offset: timedelta, expected: ErrorType
) -> None:
    with pytest.raises(IdentityRefused) as refused:
        verify_gcp_token(
            SAMPLE_TOKEN, keys=google_keys, audience=SAMPLE_AUDIENCE, now=SAMPLE_IAT + offset
        )
    assert refused.value.type is expected


def test_sample_with_a_longer_max_age(google_keys: StaticJwks) -> None:
    now = SAMPLE_IAT + timedelta(minutes=30)
    identity = verify_gcp_token(
        SAMPLE_TOKEN,
        keys=google_keys,
        audience=SAMPLE_AUDIENCE,
        now=now,
        max_age=timedelta(minutes=45),
    )
    assert identity.cloud_account == "fair-kingdom-308514"


def test_sample_for_another_audience_is_refused(google_keys: StaticJwks) -> None:
    with pytest.raises(IdentityRefused) as refused:
        verify_gcp_token(
            SAMPLE_TOKEN,
            keys=google_keys,
            audience="https://fleetpatch.example/v1/registrations",
            now=SAMPLE_IAT,
        )
    assert refused.value.type is ErrorType.IDENTITY_AUDIENCE_MISMATCH


def test_peek_reads_the_instance_key_without_keys() -> None:
    assert peek_gcp_instance_key(SAMPLE_TOKEN) == ("fair-kingdom-308514", "2589221140676718026")


@pytest.mark.parametrize(
    "bad", ["", "a.b", "not a token", "a.b.c.d", SAMPLE_TOKEN + "=", "x" * 20000]
)
def test_peek_refuses_malformed_tokens(bad: str) -> None:
    with pytest.raises(IdentityRefused) as refused:
        peek_gcp_instance_key(bad)
    assert refused.value.type is ErrorType.IDENTITY_MALFORMED


def test_naive_now_is_a_caller_error(google_keys: StaticJwks) -> None:
    with pytest.raises(ValueError):
        verify_gcp_token(
            SAMPLE_TOKEN,
            keys=google_keys,
            audience=SAMPLE_AUDIENCE,
            now=SAMPLE_IAT.replace(tzinfo=None),
        )


def test_empty_configured_audience_is_a_caller_error(google_keys: StaticJwks) -> None:
    with pytest.raises(ValueError):
        verify_gcp_token(SAMPLE_TOKEN, keys=google_keys, audience="", now=SAMPLE_IAT)


def test_peek_refuses_a_token_without_compute_claims() -> None:
    h, p, s = SAMPLE_TOKEN.split(".")
    claims = decode_segment(p)
    del claims["google"]
    stripped = f"{h}.{b64url_json(claims)}.{s}"
    with pytest.raises(IdentityRefused) as refused:
        peek_gcp_instance_key(stripped)
    assert refused.value.type is ErrorType.IDENTITY_CLAIMS_MISSING

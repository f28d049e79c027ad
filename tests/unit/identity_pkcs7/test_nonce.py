"""Stateless Azure challenge nonces: issued by the API, bound into IMDS documents."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clouds.azure.nonce import NONCE_LENGTH, check_nonce, issue_nonce
from clouds.azure.verify import verify_azure_attested
from contracts.errors import ErrorType, IdentityRefused

from .conftest import LOCAL_NOW, azure_document
from .pkcs7_builders import LocalChain, b64, build_signed_data

KEY = b"k" * 32
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
TTL = timedelta(minutes=5)
ALPHANUMERIC = set(string.ascii_letters + string.digits)


def refused(key: bytes, nonce: object, now: datetime) -> None:
    with pytest.raises(IdentityRefused) as caught:
        check_nonce(key, nonce, now)
    assert caught.value.type is ErrorType.IDENTITY_NONCE_MISMATCH


def test_shape_fits_azure_imds() -> None:
    nonce = issue_nonce(KEY, NOW, TTL)
    assert len(nonce) == NONCE_LENGTH <= 32
    assert set(nonce) <= ALPHANUMERIC


def test_valid_until_expiry() -> None:
    nonce = issue_nonce(KEY, NOW, TTL)
    check_nonce(KEY, nonce, NOW)
    check_nonce(KEY, nonce, NOW + TTL - timedelta(seconds=1))
    refused(KEY, nonce, NOW + TTL)
    refused(KEY, nonce, NOW + timedelta(days=3650))


def test_other_key_or_altered_nonce_refused() -> None:
    nonce = issue_nonce(KEY, NOW, TTL)
    refused(b"x" * 32, nonce, NOW)
    for i in range(len(nonce)):
        for replacement in ("0", "z"):
            altered = nonce[:i] + replacement + nonce[i + 1 :]
            if altered != nonce:
                refused(KEY, altered, NOW)


def test_expiry_cannot_be_extended_without_the_key() -> None:
    """Two nonces differ in expiry and MAC; swapping their parts gives no valid nonce."""
    short, long = issue_nonce(KEY, NOW, TTL), issue_nonce(KEY, NOW, timedelta(days=1))
    assert short != long
    for cut in range(2, NONCE_LENGTH - 1):
        mixed = long[:cut] + short[cut:]
        if mixed not in (short, long):
            refused(KEY, mixed, NOW)


@pytest.mark.parametrize(
    "nonce",
    [
        None,
        12,
        "",
        "1",
        "1" + "0" * 28,
        "1" + "0" * 30,
        "2" + "0" * 29,
        "1" + "-" * 29,
        "1" + "é" * 29,
        "1" + "z" * 29,
    ],
)
def test_malformed(nonce: object) -> None:
    refused(KEY, nonce, NOW)


def test_configuration_errors() -> None:
    with pytest.raises(ValueError):
        issue_nonce(b"short", NOW, TTL)
    with pytest.raises(ValueError):
        issue_nonce(KEY, NOW, timedelta(0))
    with pytest.raises(ValueError):
        issue_nonce(KEY, NOW.replace(tzinfo=None), TTL)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits, min_size=30, max_size=30))
def test_random_alphanumerics_are_not_nonces(candidate: str) -> None:
    refused(KEY, candidate, NOW)


def test_issued_nonce_round_trips_through_an_attested_document(local_chain: LocalChain) -> None:
    nonce = issue_nonce(KEY, LOCAL_NOW - timedelta(minutes=1), TTL)
    der = build_signed_data(
        azure_document(nonce=nonce),
        key=local_chain.leaf_key,
        signer=local_chain.leaf,
        embed=[local_chain.leaf],
        signed_attrs=None,
    )
    attested = {"encoding": "pkcs7", "signature": b64(der)}
    check_nonce(KEY, nonce, LOCAL_NOW)
    result = verify_azure_attested(
        attested,
        nonce=nonce,
        roots=[local_chain.root],
        intermediates=[local_chain.intermediate],
        now=LOCAL_NOW,
    )
    assert result.instance_id
    other = issue_nonce(KEY, LOCAL_NOW, TTL)
    with pytest.raises(IdentityRefused) as caught:
        verify_azure_attested(
            attested,
            nonce=other,
            roots=[local_chain.root],
            intermediates=[local_chain.intermediate],
            now=LOCAL_NOW,
        )
    assert caught.value.type is ErrorType.IDENTITY_NONCE_MISMATCH

"""Sealed activation codes: unreadable in history, readable with the shared key only."""

from __future__ import annotations

import pytest

from contracts.sealing import PREFIX, SealingError, seal, unseal

KEY = "a-shared-sealing-key-of-some-length"


def test_round_trip_and_unreadable() -> None:
    sealed = seal(KEY, "AbCdEf0123456789xyz")
    assert sealed.startswith(PREFIX)
    assert "AbCdEf0123456789xyz" not in sealed
    assert unseal(KEY, sealed) == "AbCdEf0123456789xyz"
    assert seal(KEY, "same") != seal(KEY, "same")  # random nonce each time


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: s[:-2] + ("AA" if not s.endswith("AA") else "BB"),
        lambda s: s.replace(PREFIX, "sealed:v2:"),
        lambda s: "plain-code",
    ],
)
def test_tampered_or_foreign_values_are_refused(tamper) -> None:  # noqa: ANN001
    with pytest.raises(SealingError):
        unseal(KEY, tamper(seal(KEY, "code")))


def test_another_key_cannot_unseal() -> None:
    with pytest.raises(SealingError):
        unseal("another-key-entirely-0123", seal(KEY, "code"))
    with pytest.raises(SealingError):
        seal("short", "code")

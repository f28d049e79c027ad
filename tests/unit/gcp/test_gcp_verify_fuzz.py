"""Whatever bytes come in, the verifier answers an identity or ``IdentityRefused``, nothing else.

A valid token mutated anywhere (one character replaced, dropped or inserted) must be refused:
canonical base64url means no two strings verify as the same token.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clouds.gcp.jwks import StaticJwks
from clouds.gcp.verify import verify_gcp_token
from contracts.errors import IdentityRefused
from tests.unit.gcp.forge import AUDIENCE, NOW, SAMPLE_AUDIENCE, SAMPLE_IAT, SAMPLE_TOKEN, Forge

B64URL = string.ascii_letters + string.digits + "-_"
INTERESTING = B64URL + ".=+/ \n\x00é"
FUZZ = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _outcome(token: object, keys: StaticJwks, audience: str = AUDIENCE, now=NOW) -> str:
    try:
        verify_gcp_token(token, keys=keys, audience=audience, now=now)  # type: ignore[arg-type]
    except IdentityRefused as refused:
        return refused.type.value
    return "accepted"


@FUZZ
@given(data=st.data())
def test_one_character_replaced(forge: Forge, local_keys: StaticJwks, data: st.DataObject) -> None:
    token = forge.token()
    position = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.one_of(st.sampled_from(INTERESTING), st.characters()))
    mutated = token[:position] + char + token[position + 1 :]
    outcome = _outcome(mutated, local_keys)
    if mutated == token:
        assert outcome == "accepted"
    else:
        assert outcome != "accepted"


@FUZZ
@given(data=st.data())
def test_one_character_dropped_or_inserted(
    forge: Forge, local_keys: StaticJwks, data: st.DataObject
) -> None:
    token = forge.token()
    if data.draw(st.booleans()):
        position = data.draw(st.integers(0, len(token) - 1))
        mutated = token[:position] + token[position + 1 :]
    else:
        position = data.draw(st.integers(0, len(token)))
        mutated = token[:position] + data.draw(st.sampled_from(INTERESTING)) + token[position:]
    assert mutated != token
    assert _outcome(mutated, local_keys) != "accepted"


def test_every_position_of_the_production_sample(google_keys: StaticJwks) -> None:
    """Exhaustively: each character of the real token replaced by its alphabet neighbour."""
    assert _outcome(SAMPLE_TOKEN, google_keys, SAMPLE_AUDIENCE, SAMPLE_IAT) == "accepted"
    for position, char in enumerate(SAMPLE_TOKEN):
        if char == ".":
            continue
        other = B64URL[(B64URL.index(char) + 1) % len(B64URL)]
        mutated = SAMPLE_TOKEN[:position] + other + SAMPLE_TOKEN[position + 1 :]
        outcome = _outcome(mutated, google_keys, SAMPLE_AUDIENCE, SAMPLE_IAT)
        assert outcome != "accepted", f"mutation at {position} accepted"


@FUZZ
@given(raw=st.binary(max_size=2048))
def test_random_bytes_as_latin1(local_keys: StaticJwks, raw: bytes) -> None:
    assert _outcome(raw.decode("latin-1"), local_keys) != "accepted"


@FUZZ
@given(
    parts=st.lists(st.text(alphabet=INTERESTING, max_size=300), min_size=1, max_size=5),
)
def test_random_dotted_strings(local_keys: StaticJwks, parts: list[str]) -> None:
    assert _outcome(".".join(parts), local_keys) != "accepted"


@pytest.mark.parametrize("value", [None, 0, b"", [], {}])
def test_non_strings(local_keys: StaticJwks, value: object) -> None:
    assert _outcome(value, local_keys) == "IdentityMalformed"

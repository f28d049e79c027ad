"""Key sources: the static JWKS and the PyJWKClient-based one (refresh once, rate-limited)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from clouds.gcp.jwks import JwksInvalid, RemoteJwks, StaticJwks, key_source
from clouds.gcp.verify import verify_gcp_token
from contracts.errors import ErrorType, IdentityRefused, TransientCloudError
from localclouds.gcp.keys import SigningKey
from tests.unit.gcp.forge import AUDIENCE, NOW, SAMPLE_JWKS, Forge

GOOGLE_KID = "6a8ba5652a7044121d4fedac8f14d14c54e4895b"


class ServedJwks(jwt.PyJWKClient):
    """A real PyJWKClient whose HTTP fetch is replaced by a JWKS in memory (no network).

    ``fetch_data`` is the documented override point; everything above it (cache, parsing)
    is pyjwt's own code. Counts fetches so tests can prove how often the source refreshes.
    """

    def __init__(self, jwks: Any, **kwargs: Any) -> None:
        super().__init__("https://keys.invalid/certs", cooldown_duration=0, **kwargs)
        self.jwks = jwks
        self.fetches = 0
        self.failure: Exception | None = None

    def fetch_data(self) -> Any:
        self.fetches += 1
        if self.failure is not None:
            raise self.failure
        return self.jwks


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_static_jwks_serves_googles_key() -> None:
    keys = StaticJwks(SAMPLE_JWKS)
    assert keys.kids == {GOOGLE_KID}
    key = keys.get_key(GOOGLE_KID)
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    assert keys.get_key("nope") is None


def test_static_jwks_from_file(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(SAMPLE_JWKS))
    assert StaticJwks.from_file(path).get_key(GOOGLE_KID) is not None
    assert key_source(jwks_file=path, jwks_url="https://unused.invalid").get_key(GOOGLE_KID)


@pytest.mark.parametrize("content", ["not json", "[]", '{"keys": 3}', "{}"])
def test_unusable_jwks_file_is_a_configuration_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(content)
    with pytest.raises(JwksInvalid) as raised:
        StaticJwks.from_file(path)
    assert raised.value.type is ErrorType.CONFIGURATION_INVALID


def test_missing_jwks_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(JwksInvalid):
        StaticJwks.from_file(tmp_path / "absent.json")


def _jwk(**overrides: Any) -> dict[str, Any]:
    return {**SAMPLE_JWKS["keys"][0], **overrides}


@pytest.mark.parametrize(
    "entry",
    [
        _jwk(alg="RS384"),
        _jwk(use="enc"),
        _jwk(kty="EC"),
        _jwk(n="AQAB"),  # a toy modulus
        _jwk(kid=""),
        _jwk(kid=7),
        {k: v for k, v in _jwk().items() if k != "kid"},
        {k: v for k, v in _jwk().items() if k != "n"},
        {"kty": "oct", "k": "c2VjcmV0", "kid": GOOGLE_KID},
        "not an object",
    ],
)
def test_keys_other_than_rs256_are_never_served(entry: Any) -> None:
    assert StaticJwks({"keys": [entry]}).get_key(GOOGLE_KID) is None


def test_small_rsa_keys_are_never_served() -> None:
    small = SigningKey.from_private_key(rsa.generate_private_key(65537, 1024))
    assert StaticJwks(small.jwks()).get_key(small.kid) is None


def test_ec_key_under_the_kid_is_never_served() -> None:
    ec_jwk = json.loads(
        jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())
    )
    ec_jwk["kid"] = GOOGLE_KID
    assert StaticJwks({"keys": [ec_jwk]}).get_key(GOOGLE_KID) is None
    served = ServedJwks({"keys": [ec_jwk, _jwk(kid="other")]})
    assert RemoteJwks(served).get_key(GOOGLE_KID) is None


def test_remote_serves_known_kids_from_cache() -> None:
    served = ServedJwks(SAMPLE_JWKS)
    keys = RemoteJwks(served)
    assert keys.get_key(GOOGLE_KID) is not None
    assert keys.get_key(GOOGLE_KID) is not None
    assert served.fetches == 1


def test_unknown_kid_refreshes_exactly_once_then_is_refused(forge: Forge) -> None:
    served = ServedJwks(SAMPLE_JWKS)
    clock = FakeClock()
    keys = RemoteJwks(served, min_refresh_interval=30, monotonic=clock)
    assert keys.get_key(GOOGLE_KID) is not None  # the JWKS is loaded and cached
    assert served.fetches == 1
    clock.now += 60

    token = forge.token()  # signed by a key the JWKS does not hold
    with pytest.raises(IdentityRefused) as refused:
        verify_gcp_token(token, keys=keys, audience=AUDIENCE, now=NOW)
    assert refused.value.type is ErrorType.IDENTITY_KEY_UNKNOWN
    assert served.fetches == 2  # exactly one refresh

    # More unknown kids within the interval: no refresh storm.
    for _ in range(20):
        with pytest.raises(IdentityRefused):
            verify_gcp_token(token, keys=keys, audience=AUDIENCE, now=NOW)
    assert served.fetches == 2

    # Once the interval has passed, one more refresh is allowed.
    clock.now += 31
    assert keys.get_key("still-unknown") is None
    assert served.fetches == 3


def test_unknown_kid_on_a_cold_cache_downloads_once() -> None:
    served = ServedJwks(SAMPLE_JWKS)
    keys = RemoteJwks(served, monotonic=FakeClock())
    assert keys.get_key("unknown") is None
    assert served.fetches == 1  # the first download was already fresh: no second one


def test_rotated_key_is_found_by_the_refresh(forge: Forge) -> None:
    served = ServedJwks(SAMPLE_JWKS)
    clock = FakeClock()
    keys = RemoteJwks(served, monotonic=clock)
    assert keys.get_key(GOOGLE_KID) is not None  # JWKS cached before the rotation
    clock.now += 60
    served.jwks = {"keys": [*SAMPLE_JWKS["keys"], forge.key.jwk()]}  # Google publishes a new key
    identity = verify_gcp_token(forge.token(), keys=keys, audience=AUDIENCE, now=NOW)
    assert identity.evidence["kid"] == forge.key.kid
    assert served.fetches == 2


def test_unreachable_jwks_is_transient_not_a_verdict(forge: Forge) -> None:
    served = ServedJwks(SAMPLE_JWKS)
    served.failure = jwt.exceptions.PyJWKClientConnectionError("connection refused")
    with pytest.raises(TransientCloudError) as raised:
        verify_gcp_token(forge.token(), keys=RemoteJwks(served), audience=AUDIENCE, now=NOW)
    assert raised.value.retryable
    assert not isinstance(raised.value, IdentityRefused)


@pytest.mark.parametrize("answer", [["not", "an", "object"], {"keys": []}, {"keys": "x"}, {}])
def test_garbage_from_the_jwks_endpoint_is_transient(answer: Any) -> None:
    with pytest.raises(TransientCloudError):
        RemoteJwks(ServedJwks(answer)).get_key(GOOGLE_KID)


def test_real_pyjwkclient_network_failure_is_transient() -> None:
    # Port 9 on loopback: nothing listens; PyJWKClient's own urllib fetch fails at once.
    keys = RemoteJwks.for_url("http://127.0.0.1:9/oauth2/v3/certs")
    with pytest.raises(TransientCloudError):
        keys.get_key(GOOGLE_KID)


def test_non_http_jwks_url_is_a_configuration_error() -> None:
    with pytest.raises(JwksInvalid):
        RemoteJwks.for_url("file:///etc/passwd")

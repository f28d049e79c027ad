"""fleetpatch's vCenter token: issue/verify, every refusal, and mutation robustness."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clouds.vmware.token import (
    MAX_TOKEN_CHARS,
    generate_signing_key,
    issue_token,
    key_fingerprint,
    peek_vcenter_token,
    verify_token,
)
from contracts.errors import ErrorType, IdentityRefused

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(hours=24)
VC = "vc-prod-1"
VM = "b4689bed-97f0-5bcd-8a4c-07477cc8f06f"


def _issue(private_pem: str, **overrides: Any) -> str:
    args: dict[str, Any] = dict(
        vcenter_id=VC, instance_uuid=VM, customer="acme", now=NOW, ttl=TTL
    )
    args.update(overrides)
    return issue_token(private_pem, **args)


def _verify(token: object, public_pem: str | list[str], **overrides: Any) -> Any:
    keys = public_pem if isinstance(public_pem, list) else [public_pem]
    args: dict[str, Any] = dict(public_keys=keys, vcenter_id=VC, now=NOW + timedelta(minutes=5))
    args.update(overrides)
    return verify_token(token, **args)


def _refused(error: ErrorType, token: object, public_pem: str | list[str], **kw: Any) -> None:
    with pytest.raises(IdentityRefused) as caught:
        _verify(token, public_pem, **kw)
    assert caught.value.type == error, caught.value.reason


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sign_raw(private_pem: str, header: bytes, payload: bytes) -> str:
    """A token over exactly these header/payload bytes, validly signed: tests claim checks only."""
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    signing_input = (_b64(header) + "." + _b64(payload)).encode()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        sig = key.sign(signing_input)
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signing_input.decode() + "." + _b64(sig)


def _claims(**overrides: Any) -> dict[str, Any]:
    iat = int(NOW.timestamp())
    claims: dict[str, Any] = {
        "iss": "fleetpatch", "vc": VC, "sub": VM, "customer": "acme", "jti": "j1",
        "iat": iat, "exp": iat + 3600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _header(alg: str = "EdDSA", **extra: Any) -> bytes:
    return json.dumps({"alg": alg, "typ": "JWT", **extra}).encode()


# --- accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_round_trip(alg: str) -> None:
    private_pem, public_pem = generate_signing_key(alg)  # type: ignore[arg-type]
    token = _issue(private_pem)
    verified = _verify(token, public_pem)
    assert verified.vcenter_id == VC
    assert verified.instance_uuid == VM
    assert verified.customer == "acme"
    assert verified.alg == alg
    assert verified.issued_at == NOW
    assert verified.expires_at == NOW + TTL
    assert len(verified.jti) >= 16
    public_key = serialization.load_pem_public_key(public_pem.encode())
    assert verified.key_fingerprint == key_fingerprint(public_key)  # type: ignore[arg-type]
    assert peek_vcenter_token(token) == (VC, VM)


def test_each_token_has_a_fresh_jti(ed_keys: tuple[str, str]) -> None:
    assert _verify(_issue(ed_keys[0]), ed_keys[1]).jti != _verify(_issue(ed_keys[0]), ed_keys[1]).jti


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_interoperates_with_pyjwt(alg: str) -> None:
    """Our tokens are standard JWS: PyJWT verifies ours, and we verify PyJWT's."""
    private_pem, public_pem = generate_signing_key(alg)  # type: ignore[arg-type]
    decoded = jwt.decode(_issue(private_pem), public_pem, algorithms=[alg],
                         options={"verify_exp": False, "verify_iat": False})
    assert decoded["sub"] == VM and decoded["vc"] == VC
    theirs = jwt.encode(_claims(), private_pem, algorithm=alg)
    assert _verify(theirs, public_pem).jti == "j1"


def test_rotation_accepts_any_configured_key(ed_keys: tuple[str, str], es_keys: tuple[str, str]) -> None:
    new_private, new_public = generate_signing_key("EdDSA")
    keys = [ed_keys[1], new_public, es_keys[1]]
    assert _verify(_issue(ed_keys[0]), keys).alg == "EdDSA"
    assert _verify(_issue(new_private), keys).alg == "EdDSA"
    assert _verify(_issue(es_keys[0]), keys).alg == "ES256"


def test_leeway_tolerates_small_clock_skew(ed_keys: tuple[str, str]) -> None:
    token = _issue(ed_keys[0])
    assert _verify(token, ed_keys[1], now=NOW - timedelta(seconds=30))
    assert _verify(token, ed_keys[1], now=NOW + TTL + timedelta(seconds=30))


# --- refused: algorithm ----------------------------------------------------------------------


def test_alg_none_is_refused(ed_keys: tuple[str, str]) -> None:
    token = _b64(_header("none")) + "." + _b64(json.dumps(_claims()).encode()) + "."
    _refused(ErrorType.IDENTITY_ALGORITHM_REFUSED, token, ed_keys[1])


def test_hs256_with_the_public_key_as_secret_is_refused(ed_keys: tuple[str, str]) -> None:
    signing_input = _b64(_header("HS256")) + "." + _b64(json.dumps(_claims()).encode())
    mac = hmac.new(ed_keys[1].encode(), signing_input.encode(), hashlib.sha256).digest()
    _refused(ErrorType.IDENTITY_ALGORITHM_REFUSED, signing_input + "." + _b64(mac), ed_keys[1])


def test_rs256_is_refused() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    _refused(ErrorType.IDENTITY_ALGORITHM_REFUSED, jwt.encode(_claims(), pem, algorithm="RS256"), public)


def test_alg_without_a_key_of_its_type_is_refused(ed_keys: tuple[str, str], es_keys: tuple[str, str]) -> None:
    _refused(ErrorType.IDENTITY_ALGORITHM_REFUSED, _issue(ed_keys[0]), es_keys[1])
    _refused(ErrorType.IDENTITY_ALGORITHM_REFUSED, _issue(es_keys[0]), ed_keys[1])


def test_relabelled_alg_never_verifies(ed_keys: tuple[str, str], es_keys: tuple[str, str]) -> None:
    """An EdDSA signature under a header that says ES256 is checked with P-256 keys only."""
    token = _issue(ed_keys[0])
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    header["alg"] = "ES256"
    forged = _b64(json.dumps(header).encode()) + "." + ".".join(token.split(".")[1:])
    with pytest.raises(IdentityRefused) as caught:
        _verify(forged, [ed_keys[1], es_keys[1]])
    assert caught.value.type in (ErrorType.IDENTITY_KEY_UNKNOWN, ErrorType.IDENTITY_SIGNATURE_INVALID)
    del header["kid"]
    forged = _b64(json.dumps(header).encode()) + "." + ".".join(token.split(".")[1:])
    _refused(ErrorType.IDENTITY_SIGNATURE_INVALID, forged, [ed_keys[1], es_keys[1]])


# --- refused: signature, keys, vCenter -------------------------------------------------------


def test_bad_signature_is_refused(ed_keys: tuple[str, str], es_keys: tuple[str, str]) -> None:
    for private_pem, public_pem in (ed_keys, es_keys):
        head, payload, sig = _issue(private_pem).split(".")
        raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
        raw[10] ^= 0x01
        _refused(ErrorType.IDENTITY_SIGNATURE_INVALID, f"{head}.{payload}.{_b64(bytes(raw))}", public_pem)
        _refused(ErrorType.IDENTITY_SIGNATURE_INVALID, f"{head}.{payload}.", public_pem)


def test_changed_claims_break_the_signature(ed_keys: tuple[str, str]) -> None:
    head, _, sig = _issue(ed_keys[0]).split(".")
    other = _b64(json.dumps(_claims(sub="12f8928d-f144-5c57-89db-dd2d0902c9fa")).encode())
    _refused(ErrorType.IDENTITY_SIGNATURE_INVALID, f"{head}.{other}.{sig}", ed_keys[1])


def test_other_vcenters_token_is_refused(ed_keys: tuple[str, str]) -> None:
    other_private, other_public = generate_signing_key("EdDSA")
    # Issued for another vCenter: refused on its vc claim whichever keys we hold.
    _refused(ErrorType.IDENTITY_VCENTER_UNKNOWN, _issue(other_private, vcenter_id="vc-2"), ed_keys[1])
    _refused(ErrorType.IDENTITY_VCENTER_UNKNOWN, _issue(ed_keys[0], vcenter_id="vc-2"), ed_keys[1])
    # Claims our vCenter but signed with another vCenter's key: its kid names none of ours...
    _refused(ErrorType.IDENTITY_KEY_UNKNOWN, _issue(other_private), ed_keys[1])
    # ...and without a kid the signature does not verify.
    _refused(ErrorType.IDENTITY_SIGNATURE_INVALID, _sign_raw(other_private, _header(), json.dumps(_claims()).encode()), ed_keys[1])


def test_unusable_configured_keys_are_refused(ed_keys: tuple[str, str]) -> None:
    token = _issue(ed_keys[0])
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    for keys in ([], ["not a pem"], [ed_keys[1], "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"], [p384]):
        _refused(ErrorType.IDENTITY_KEY_UNKNOWN, token, keys)


# --- refused: time and issuer ----------------------------------------------------------------


def test_expired_token_is_refused(ed_keys: tuple[str, str]) -> None:
    _refused(ErrorType.IDENTITY_EXPIRED, _issue(ed_keys[0]), ed_keys[1], now=NOW + TTL + timedelta(minutes=2))


def test_token_issued_in_the_future_is_refused(ed_keys: tuple[str, str]) -> None:
    _refused(ErrorType.IDENTITY_NOT_YET_VALID, _issue(ed_keys[0], now=NOW + timedelta(hours=1)), ed_keys[1], now=NOW)


def test_exp_before_iat_is_refused(ed_keys: tuple[str, str]) -> None:
    iat = int(NOW.timestamp())
    token = _sign_raw(ed_keys[0], _header(), json.dumps(_claims(exp=iat - 1)).encode())
    _refused(ErrorType.IDENTITY_MALFORMED, token, ed_keys[1])


def test_other_issuer_is_refused(ed_keys: tuple[str, str]) -> None:
    token = _sign_raw(ed_keys[0], _header(), json.dumps(_claims(iss="someone")).encode())
    _refused(ErrorType.IDENTITY_ISSUER_MISMATCH, token, ed_keys[1])


# --- refused: shape --------------------------------------------------------------------------


def test_missing_claims_are_refused(ed_keys: tuple[str, str]) -> None:
    for name in ("iss", "vc", "sub", "customer", "jti", "iat", "exp"):
        token = _sign_raw(ed_keys[0], _header(), json.dumps(_claims(**{name: None})).encode())
        _refused(ErrorType.IDENTITY_CLAIMS_MISSING, token, ed_keys[1])


@pytest.mark.parametrize(
    "claims",
    [
        {"iat": True},
        {"exp": 1.5e9},
        {"exp": "1900000000"},
        {"sub": "vm-42"},
        {"sub": 7},
        {"vc": ["vc-prod-1"]},
        {"customer": ""},
        {"jti": "x" * 300},
        {"iat": -5},
    ],
)
def test_wrongly_typed_claims_are_refused(ed_keys: tuple[str, str], claims: dict[str, Any]) -> None:
    token = _sign_raw(ed_keys[0], _header(), json.dumps(_claims(**claims)).encode())
    _refused(ErrorType.IDENTITY_MALFORMED, token, ed_keys[1])


def test_duplicate_json_keys_are_refused(ed_keys: tuple[str, str]) -> None:
    payload = json.dumps(_claims())[:-1] + ', "sub": "12f8928d-f144-5c57-89db-dd2d0902c9fa"}'
    _refused(ErrorType.IDENTITY_MALFORMED, _sign_raw(ed_keys[0], _header(), payload.encode()), ed_keys[1])
    header = b'{"alg": "EdDSA", "alg": "EdDSA", "typ": "JWT"}'
    _refused(ErrorType.IDENTITY_MALFORMED, _sign_raw(ed_keys[0], header, json.dumps(_claims()).encode()), ed_keys[1])


def test_non_json_constants_and_crit_are_refused(ed_keys: tuple[str, str]) -> None:
    payload = json.dumps(_claims())[:-1] + ', "x": NaN}'
    _refused(ErrorType.IDENTITY_MALFORMED, _sign_raw(ed_keys[0], _header(), payload.encode()), ed_keys[1])
    header = _header(crit=["exp"])
    _refused(ErrorType.IDENTITY_MALFORMED, _sign_raw(ed_keys[0], header, json.dumps(_claims()).encode()), ed_keys[1])
    header = _header(typ="JOSE+JSON")
    _refused(ErrorType.IDENTITY_MALFORMED, _sign_raw(ed_keys[0], header, json.dumps(_claims()).encode()), ed_keys[1])


def test_malformed_tokens_are_refused(ed_keys: tuple[str, str]) -> None:
    good = _issue(ed_keys[0])
    head, payload, sig = good.split(".")
    not_utf8 = _b64(b"\xff\xfe")
    # The 64-byte signature is 86 characters, the last carrying 4 unused bits: a different
    # final character can decode to the same bytes. Only the canonical form is accepted.
    assert len(sig) == 86
    sibling = next(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                   if c != sig[-1] and base64.urlsafe_b64decode(sig[:-1] + c + "==")
                   == base64.urlsafe_b64decode(sig + "=="))
    cases: list[object] = [
        None, 42, good.encode(), {"token": good}, "", ".", "..", head, f"{head}.{payload}",
        f"{good}.x", f"{head}=.{payload}.{sig}", f"{head}.{payload}+.{sig}",
        f"{head}.{payload}.{sig[:-1] + sibling}", f"{head}.{payload}.{sig}=",
        f"{_b64(b'[1, 2]')}.{payload}.{sig}", f"{head}.{_b64(b'not json')}.{sig}",
        f"{head}.{not_utf8}.{sig}", f"{_b64(b'[' * 5000)}.{payload}.{sig}",
        "é" + good, good + "\n",
    ]
    for case in cases:
        _refused(ErrorType.IDENTITY_MALFORMED, case, ed_keys[1])


def test_oversized_token_is_refused_before_parsing(ed_keys: tuple[str, str]) -> None:
    payload = json.dumps(_claims(pad="x" * MAX_TOKEN_CHARS)).encode()
    _refused(ErrorType.IDENTITY_MALFORMED, _sign_raw(ed_keys[0], _header(), payload), ed_keys[1])
    _refused(ErrorType.IDENTITY_MALFORMED, "a" * 10_000_000, ed_keys[1])


def test_peek_reads_without_keys_and_refuses_garbage(ed_keys: tuple[str, str]) -> None:
    other_private, _ = generate_signing_key("ES256")
    assert peek_vcenter_token(_issue(other_private, vcenter_id="vc-9")) == ("vc-9", VM)
    for bad in (None, "x.y.z", _b64(_header()) + "." + _b64(b"{}") + "."):
        with pytest.raises(IdentityRefused):
            peek_vcenter_token(bad)


def test_issue_rejects_bad_arguments(ed_keys: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        _issue(ed_keys[0], instance_uuid="vm-1")
    with pytest.raises(ValueError):
        _issue(ed_keys[0], now=datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        _issue(ed_keys[0], ttl=timedelta(0))
    with pytest.raises(ValueError):
        generate_signing_key("HS256")  # type: ignore[arg-type]


# --- property tests --------------------------------------------------------------------------

_TOKEN_CHARS = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ é\x00")


@st.composite
def _mutations(draw: st.DrawFn, token: str) -> str:
    kind = draw(st.sampled_from(["replace", "delete", "insert", "truncate", "swap_parts"]))
    i = draw(st.integers(0, len(token) - 1))
    if kind == "replace":
        return token[:i] + draw(_TOKEN_CHARS) + token[i + 1:]
    if kind == "delete":
        j = draw(st.integers(i + 1, min(len(token), i + 8)))
        return token[:i] + token[j:]
    if kind == "insert":
        return token[:i] + draw(st.text(_TOKEN_CHARS, min_size=1, max_size=8)) + token[i:]
    if kind == "truncate":
        return token[:i]
    parts = token.split(".")
    order = draw(st.permutations(range(3)))
    return ".".join(parts[k] for k in order)


_PROPERTY_KEYS = generate_signing_key("EdDSA"), generate_signing_key("ES256")
_PROPERTY_TOKENS = [_issue(private) for private, _ in _PROPERTY_KEYS]
_PROPERTY_PUBLIC = [public for _, public in _PROPERTY_KEYS]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([0, 1]).flatmap(lambda k: st.tuples(st.just(k), _mutations(_PROPERTY_TOKENS[k]))))
def test_mutated_token_is_refused_or_unchanged(case: tuple[int, str]) -> None:
    index, mutated = case
    try:
        verified = _verify(mutated, _PROPERTY_PUBLIC)
    except IdentityRefused:
        return
    assert mutated == _PROPERTY_TOKENS[index], "a changed token verified"
    assert verified.instance_uuid == VM


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    header=st.dictionaries(st.sampled_from(["alg", "typ", "kid", "crit", "x"]), _JSON, max_size=4),
    claims=st.dictionaries(
        st.sampled_from(["iss", "vc", "sub", "customer", "jti", "iat", "exp", "x"]), _JSON, max_size=8
    ),
)
def test_validly_signed_arbitrary_json_only_ever_refuses(header: dict[str, Any], claims: dict[str, Any]) -> None:
    private_pem, public_pem = _PROPERTY_KEYS[0]
    token = _sign_raw(private_pem, json.dumps(header).encode(), json.dumps(claims).encode())
    with pytest.raises(IdentityRefused):
        _verify(token, public_pem)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_random_input_only_ever_refuses(data: str | bytes) -> None:
    with pytest.raises(IdentityRefused):
        _verify(data, _PROPERTY_PUBLIC)
    with pytest.raises(IdentityRefused):
        peek_vcenter_token(data)

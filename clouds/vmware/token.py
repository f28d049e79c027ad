"""fleetpatch's own vCenter identity token: a short-lived JWT per VM (pure functions).

vCenter has no signed instance identity of its own, so fleetpatch issues one. Per linked vCenter
it holds a signing key (EdDSA/Ed25519 preferred, ES256/P-256 supported) and writes a token per VM
into the VM's ``guestinfo.fleetpatch.token`` (see ``vsphere.py``); the guest reads it back with
VMware Tools and presents it. The verifier here checks the token itself; ``vsphere.py`` then
checks that the VM still holds this very token and that the guest's BIOS UUID fits.

Claims: ``iss`` = "fleetpatch", ``vc`` = vCenter id, ``sub`` = the VM's instanceUuid,
``customer``, ``jti`` (random), ``iat``, ``exp`` (integer seconds), and ``link``: the vmware link
the token was issued under (``vc01:acme`` on a vCenter shared by several customers, see
``contracts.vcenter_links``). A token without ``link`` (issued before links could share a vCenter)
names the link named by its vCenter, ``vc``. The header carries ``kid``, the signing key's
fingerprint, so several keys (rotation) can be configured at once.

Verification order and the refusal each step raises:

1. shape: three canonical base64url parts, at most ``MAX_TOKEN_CHARS``, JSON objects without
   duplicate keys, claims of the right types -> ``IdentityMalformed`` (oversized too), missing
   claims -> ``IdentityClaimsMissing``;
2. ``alg`` is EdDSA or ES256 -> else ``IdentityAlgorithmRefused``;
3. ``vc`` equals the vCenter being verified for -> else ``IdentityVCenterUnknown``; the token's
   link is the link being verified for, and a link of that vCenter -> else ``IdentityLinkMismatch``
   (a token of link A never enrolls under link B, even on the same vCenter). This is read
   before the signature on purpose: the keys at hand belong to this vCenter only, so another
   vCenter's token could never verify, and the precise reason is more useful. (A token that
   claims this vCenter but was signed by another vCenter's key ends in ``IdentityKeyUnknown``
   when its ``kid`` names no configured key, else ``IdentitySignatureInvalid``.)
4. a configured key of the type ``alg`` demands (no algorithm confusion: EdDSA only with Ed25519
   keys, ES256 only with P-256 keys) -> else ``IdentityAlgorithmRefused``; signature -> else
   ``IdentitySignatureInvalid``;
5. ``iss`` -> ``IdentityIssuerMismatch``; ``exp`` not passed -> ``IdentityExpired``; ``iat`` not
   in the future -> ``IdentityNotYetValid`` (both with a small leeway for clock skew).

Nothing but ``contracts.errors.IdentityRefused`` escapes ``verify_token`` or
``peek_vcenter_token``, whatever the input.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NoReturn

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from clouds.vmware.biosuuid import bios_uuid_matches
from clouds.vmware.jws import b64url, b64url_decode, compact_json, json_object
from contracts import vcenter_links
from contracts.errors import ErrorType, IdentityRefused

__all__ = [
    "GUESTINFO_TOKEN_KEY",
    "ISSUER",
    "MAX_TOKEN_CHARS",
    "SigningAlg",
    "VerifiedVcenterToken",
    "bios_uuid_matches",
    "generate_signing_key",
    "issue_token",
    "key_fingerprint",
    "peek_vcenter_token",
    "verify_token",
]

ISSUER = "fleetpatch"
#: The VM's extraConfig key fleetpatch writes the token to; the guest reads it with
#: ``vmware-rpctool "info-get guestinfo.fleetpatch.token"``.
GUESTINFO_TOKEN_KEY = "guestinfo.fleetpatch.token"
#: A token is three short base64url parts; anything longer is refused before parsing.
MAX_TOKEN_CHARS = 4096
MAX_CLAIM_CHARS = 256
DEFAULT_LEEWAY = timedelta(seconds=60)

SigningAlg = Literal["EdDSA", "ES256"]
_ALGS: tuple[str, ...] = ("EdDSA", "ES256")
_REQUIRED_CLAIMS = ("iss", "vc", "sub", "customer", "jti", "iat", "exp")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")

_PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class VerifiedVcenterToken:
    """What a verified token proves: this vCenter's fleetpatch key signed these claims."""

    vcenter_id: str
    instance_uuid: str
    customer: str
    jti: str
    issued_at: datetime
    expires_at: datetime
    alg: str
    key_fingerprint: str  # "sha256:<hex of the SubjectPublicKeyInfo DER>"
    link: str = ""  # the link id the token was issued under ("vc01" or "vc01:acme")


# --- keys ----------------------------------------------------------------------------------


def generate_signing_key(alg: SigningAlg = "EdDSA") -> tuple[str, str]:
    """A new signing key for one vCenter: ``(private PKCS#8 PEM, public SPKI PEM)``."""
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    if alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}; use EdDSA or ES256")
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def key_fingerprint(public_key: _PublicKey) -> str:
    """``sha256:<hex>`` over the key's SubjectPublicKeyInfo DER: stable across PEM formatting."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _kid(public_key: _PublicKey) -> str:
    """The header ``kid``: the fingerprint's digest, base64url (short, still collision-free)."""
    digest = bytes.fromhex(key_fingerprint(public_key).removeprefix("sha256:"))
    return b64url(digest)


def _alg_of(key: object) -> str | None:
    """The one JWS algorithm a key may be used with, or None when fleetpatch accepts no such key."""
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) and isinstance(
        key.curve, ec.SECP256R1
    ):
        return "ES256"
    return None


# --- issuing -------------------------------------------------------------------------------


def issue_token(
    private_pem: str,
    *,
    vcenter_id: str,
    instance_uuid: str,
    customer: str,
    now: datetime,
    ttl: timedelta,
    link: str | None = None,
) -> str:
    """Sign a token for one VM under ``link`` (default: the link named by the vCenter). The
    algorithm follows the key (Ed25519 -> EdDSA, P-256 -> ES256).

    Raises ValueError for a key or arguments fleetpatch would refuse to verify (programming or
    configuration errors, never VM input).
    """
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    alg = _alg_of(key)
    if alg is None:
        raise ValueError("the signing key must be Ed25519 or EC P-256")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if ttl <= timedelta(0):
        raise ValueError("ttl must be positive")
    for name, value in (("vcenter_id", vcenter_id), ("customer", customer)):
        if not value or len(value) > MAX_CLAIM_CHARS:
            raise ValueError(f"{name} must be 1..{MAX_CLAIM_CHARS} characters")
    if not _UUID.match(instance_uuid):
        raise ValueError("instance_uuid must be a UUID")
    link = link or vcenter_id
    if not vcenter_links.is_link_id(link) or vcenter_links.vcenter_of(link) != vcenter_id:
        raise ValueError(f"link must be a link id of vCenter {vcenter_id}")
    iat = int(now.timestamp())
    claims = {
        "iss": ISSUER,
        "vc": vcenter_id,
        "link": link,
        "sub": instance_uuid,
        "customer": customer,
        "jti": secrets.token_urlsafe(16),
        "iat": iat,
        "exp": iat + int(ttl.total_seconds()),
    }
    header = {"alg": alg, "typ": "JWT", "kid": _kid(key.public_key())}  # type: ignore[union-attr]
    signing_input = (b64url(compact_json(header)) + "." + b64url(compact_json(claims))).encode()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(signing_input)
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        signature = _der_to_raw_p256(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return signing_input.decode() + "." + b64url(signature)


# --- verifying -----------------------------------------------------------------------------


def verify_token(
    token: object,
    *,
    public_keys: list[str],
    vcenter_id: str,
    now: datetime,
    leeway: timedelta = DEFAULT_LEEWAY,
    link: str | None = None,
) -> VerifiedVcenterToken:
    """Verify a vCenter token for ``link`` (a link id of ``vcenter_id``; default: the link named
    by the vCenter) against that link's public keys (PEM).

    See the module docstring for the order of checks and the refusal of each.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    header, claims, signing_input, signature = _parse(token)
    alg = header["alg"]
    if claims["vc"] != vcenter_id:
        _refuse(ErrorType.IDENTITY_VCENTER_UNKNOWN, "the token was issued for another vCenter")
    expected = link or vcenter_id
    if _link_of(claims) != expected or vcenter_links.vcenter_of(expected) != vcenter_id:
        _refuse(ErrorType.IDENTITY_LINK_MISMATCH, "the token was issued under another link of this vCenter")
    key = _verify_signature(alg, header.get("kid"), signing_input, signature, public_keys)
    if claims["iss"] != ISSUER:
        _refuse(ErrorType.IDENTITY_ISSUER_MISMATCH, "the token was not issued by fleetpatch")
    issued_at = datetime.fromtimestamp(claims["iat"], UTC)
    expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    if expires_at <= issued_at:
        _refuse(ErrorType.IDENTITY_MALFORMED, "the token expires before it was issued")
    if now >= expires_at + leeway:
        _refuse(ErrorType.IDENTITY_EXPIRED, "the token has expired")
    if issued_at > now + leeway:
        _refuse(ErrorType.IDENTITY_NOT_YET_VALID, "the token was issued in the future")
    return VerifiedVcenterToken(
        vcenter_id=claims["vc"],
        instance_uuid=claims["sub"],
        customer=claims["customer"],
        jti=claims["jti"],
        issued_at=issued_at,
        expires_at=expires_at,
        alg=alg,
        key_fingerprint=key_fingerprint(key),
        link=expected,
    )


def peek_vcenter_token(token: object) -> tuple[str, str]:
    """``(link id, instance uuid)`` read WITHOUT verifying anything; the link id is the vCenter id
    for a whole-vCenter link (and for a token without a ``link`` claim).

    Only for routing (which link's keys, which vCenter's connection); never trust the result
    before ``verify_token`` has accepted the same token for that link.
    """
    _, claims, _, _ = _parse(token)
    return _link_of(claims), claims["sub"]


def _link_of(claims: dict[str, Any]) -> str:
    return claims.get("link", claims["vc"])


# --- parsing -------------------------------------------------------------------------------


def _refuse(error: ErrorType, reason: str) -> NoReturn:
    raise IdentityRefused(error, reason)


def _parse(token: object) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Split, decode and type-check a token; refuse anything that is not exactly our shape."""
    if not isinstance(token, str):
        _refuse(ErrorType.IDENTITY_MALFORMED, "the token is not a string")
    if len(token) > MAX_TOKEN_CHARS:
        _refuse(ErrorType.IDENTITY_MALFORMED, f"the token is longer than {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) != 3:
        _refuse(ErrorType.IDENTITY_MALFORMED, "the token does not have three parts")
    header = json_object(b64url_decode(parts[0], "header"), "header")
    _check_header(header)  # before the rest: an "alg": "none" token is refused as such
    claims = json_object(b64url_decode(parts[1], "payload"), "payload")
    _check_claims(claims)
    signature = b64url_decode(parts[2], "signature")  # may be empty; never verifies then
    return header, claims, (parts[0] + "." + parts[1]).encode("ascii"), signature


def _check_header(header: dict[str, Any]) -> None:
    alg = header.get("alg")
    if not isinstance(alg, str):
        _refuse(ErrorType.IDENTITY_MALFORMED, "the token header has no alg")
    if alg not in _ALGS:
        _refuse(ErrorType.IDENTITY_ALGORITHM_REFUSED, f"algorithm {alg[:20]!r} is not accepted")
    if "crit" in header:
        _refuse(ErrorType.IDENTITY_MALFORMED, "critical header extensions are not supported")
    typ = header.get("typ", "JWT")
    if not isinstance(typ, str) or typ.upper() != "JWT":
        _refuse(ErrorType.IDENTITY_MALFORMED, "the token header typ is not JWT")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= MAX_CLAIM_CHARS):
        _refuse(ErrorType.IDENTITY_MALFORMED, "the token header kid is not a short string")


def _check_claims(claims: dict[str, Any]) -> None:
    missing = [name for name in _REQUIRED_CLAIMS if name not in claims]
    if missing:
        _refuse(ErrorType.IDENTITY_CLAIMS_MISSING, f"the token lacks {', '.join(missing)}")
    for name in ("iss", "vc", "sub", "customer", "jti"):
        value = claims[name]
        if not isinstance(value, str) or not 0 < len(value) <= MAX_CLAIM_CHARS:
            _refuse(ErrorType.IDENTITY_MALFORMED, f"claim {name} is not a short string")
    if "link" in claims and (not isinstance(claims["link"], str) or not vcenter_links.is_link_id(claims["link"])):
        _refuse(ErrorType.IDENTITY_MALFORMED, "claim link is not a vmware link id")
    for name in ("iat", "exp"):
        value = claims[name]
        # bool is an int in Python; a NumericDate must be a plain integer here.
        if type(value) is not int or not 0 <= value < 2**40:
            _refuse(ErrorType.IDENTITY_MALFORMED, f"claim {name} is not an integer time")
    if not _UUID.match(claims["sub"]):
        _refuse(ErrorType.IDENTITY_MALFORMED, "claim sub is not an instance UUID")


def _verify_signature(
    alg: str, kid: str | None, signing_input: bytes, signature: bytes, public_keys: list[str]
) -> _PublicKey:
    """The configured key that signed; refuses when none of the right type does."""
    keys = [k for k in _load_public_keys(public_keys) if _alg_of(k) == alg]
    if not keys:
        _refuse(ErrorType.IDENTITY_ALGORITHM_REFUSED, f"this vCenter has no {alg} key")
    if kid is not None:
        wanted = kid.encode("utf-8", "surrogatepass")
        keys = [k for k in keys if secrets.compare_digest(_kid(k).encode(), wanted)]
        if not keys:
            _refuse(ErrorType.IDENTITY_KEY_UNKNOWN, "the token's kid names no key of this vCenter")
    for key in keys:
        if _signature_ok(key, signing_input, signature):
            return key
    _refuse(ErrorType.IDENTITY_SIGNATURE_INVALID, "the token signature does not verify")


def _signature_ok(key: _PublicKey, signing_input: bytes, signature: bytes) -> bool:
    if len(signature) != 64:  # Ed25519 and raw P-256 r||s are both 64 bytes
        return False
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signing_input)
        else:
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def _load_public_keys(pems: list[str]) -> list[_PublicKey]:
    """Parse the vCenter's configured keys; a bad entry refuses (fail closed, never skipped)."""
    if not isinstance(pems, list | tuple) or not pems:
        _refuse(ErrorType.IDENTITY_KEY_UNKNOWN, "no public key is configured for this vCenter")
    keys: list[_PublicKey] = []
    for index, pem in enumerate(pems):
        try:
            key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
        except (ValueError, TypeError, UnsupportedAlgorithm, AttributeError):
            _refuse(ErrorType.IDENTITY_KEY_UNKNOWN, f"configured vCenter key #{index} is not a PEM key")
        if _alg_of(key) is None:
            _refuse(
                ErrorType.IDENTITY_KEY_UNKNOWN,
                f"configured vCenter key #{index} is neither Ed25519 nor EC P-256",
            )
        keys.append(key)  # type: ignore[arg-type]
    return keys


def _der_to_raw_p256(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")

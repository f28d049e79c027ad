"""Stateless challenge nonces for Azure attested documents.

The API hands a VM a nonce from ``GET /v1/challenge``; the VM asks IMDS for an attested document
bound to it (``/metadata/attested/document?nonce=...``), and the verifier compares the signed
nonce with the one the VM claims to have been given. The nonce must itself be something only the
API could have issued recently, without a database: it carries its expiry and an HMAC-SHA256
over that expiry, truncated to 128 bits.

Format (IMDS accepts at most 32 alphanumeric characters): ``"1"`` (version) followed by 29
base-62 digits (0-9, A-Z, a-z) encoding 21 bytes = expiry (40-bit Unix seconds, big-endian) ||
HMAC-SHA256(key, b"fleetpatch/azure-nonce/v1" || expiry)[:16]. 30 characters in all.
Nonces are not single-use: within its lifetime a nonce may be presented again (the
enrollment's own trust-on-first-use rules refuse a second enrollment of the same VM).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from contracts.errors import ErrorType, IdentityRefused

_VERSION = "1"
_DOMAIN = b"fleetpatch/azure-nonce/v1"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INDEX = {char: value for value, char in enumerate(_ALPHABET)}
_EXPIRY_BYTES = 5
_MAC_BYTES = 16  # 128 bits
_PAYLOAD_BYTES = _EXPIRY_BYTES + _MAC_BYTES
_DIGITS = 29  # 62**29 > 2**168
NONCE_LENGTH = len(_VERSION) + _DIGITS
MIN_KEY_BYTES = 16


def _mac(key: bytes, expiry: bytes) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the challenge key must have at least {MIN_KEY_BYTES} bytes")
    return hmac.new(key, _DOMAIN + expiry, hashlib.sha256).digest()[:_MAC_BYTES]


def _encode(payload: bytes) -> str:
    number = int.from_bytes(payload, "big")
    digits = []
    for _ in range(_DIGITS):
        number, rest = divmod(number, 62)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits))


def _decode(text: str) -> bytes | None:
    number = 0
    for char in text:
        value = _INDEX.get(char)
        if value is None:
            return None
        number = number * 62 + value
    if number >= 1 << (8 * _PAYLOAD_BYTES):
        return None
    return number.to_bytes(_PAYLOAD_BYTES, "big")


def _seconds(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return int(moment.timestamp())


def issue_nonce(key: bytes, now: datetime, ttl: timedelta) -> str:
    """A nonce valid until ``now + ttl`` (whole seconds). ``key`` is the API's challenge key
    (``ApiSettings.challenge_key``, at least 16 bytes)."""
    if ttl <= timedelta(0):
        raise ValueError("ttl must be positive")
    expiry = (_seconds(now) + int(ttl.total_seconds())).to_bytes(_EXPIRY_BYTES, "big")
    return _VERSION + _encode(expiry + _mac(key, expiry))


def check_nonce(key: bytes, nonce: object, now: datetime) -> None:
    """Accept a nonce this key issued that has not expired at ``now``; otherwise raise
    IdentityRefused(IdentityNonceMismatch). The MAC is compared in constant time."""
    if (
        not isinstance(nonce, str)
        or len(nonce) != NONCE_LENGTH
        or not nonce.isascii()
        or not nonce.startswith(_VERSION)
    ):
        raise IdentityRefused(ErrorType.IDENTITY_NONCE_MISMATCH, "nonce is malformed")
    payload = _decode(nonce[len(_VERSION) :])
    if payload is None:
        raise IdentityRefused(ErrorType.IDENTITY_NONCE_MISMATCH, "nonce is malformed")
    expiry, mac = payload[:_EXPIRY_BYTES], payload[_EXPIRY_BYTES:]
    if not hmac.compare_digest(mac, _mac(key, expiry)):
        raise IdentityRefused(ErrorType.IDENTITY_NONCE_MISMATCH, "nonce was not issued here")
    if _seconds(now) >= int.from_bytes(expiry, "big"):
        raise IdentityRefused(ErrorType.IDENTITY_NONCE_MISMATCH, "nonce has expired")

"""Strict JWS compact-serialization codec for fleetpatch's vCenter tokens.

Strict on purpose: only canonical unpadded base64url (no second spelling of the same bytes),
UTF-8 JSON objects without duplicate keys or NaN/Infinity, no unbounded nesting. Every failure
is ``IdentityRefused(IdentityMalformed)``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, NoReturn

from contracts import strict_json
from contracts.errors import ErrorType, IdentityRefused

_B64URL = re.compile(r"[A-Za-z0-9_-]*\Z")


def _refuse(reason: str) -> NoReturn:
    raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, reason)


def b64url_decode(part: str, what: str) -> bytes:
    """Strict unpadded base64url; a non-canonical spelling is refused (no malleability).

    Empty is allowed: an empty signature simply never verifies.
    """
    if not _B64URL.match(part) or len(part) % 4 == 1:
        _refuse(f"the token {what} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        _refuse(f"the token {what} is not base64url")
    if b64url(raw) != part:
        _refuse(f"the token {what} is not canonical base64url")
    return raw


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Parse a strict JSON object (contracts.strict_json): no duplicate keys, no NaN/Infinity."""
    try:
        return strict_json.loads_object(raw)
    except strict_json.StrictJsonError:
        _refuse(f"the token {what} is not a JSON object")


def b64url(raw: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def compact_json(value: dict[str, Any]) -> bytes:
    """Deterministic compact JSON for issuing."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()

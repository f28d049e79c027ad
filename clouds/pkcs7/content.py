"""The transport and the signed content: canonical base64 in, one strict JSON object out, and
its optional string fields."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from clouds.pkcs7.encoding import MAX_DER_BYTES
from clouds.pkcs7.errors import malformed as _malformed
from contracts import strict_json
from contracts.errors import ErrorType, IdentityRefused

_WHITESPACE = {ord(c): None for c in " \t\r\n"}


def decode_base64(text: object, *, what: str, max_bytes: int = MAX_DER_BYTES) -> bytes:
    """Decode canonical standard base64; line breaks and spaces between characters are allowed
    (IMDS wraps its output). Anything that would not re-encode to the same text is refused, so
    one document has one spelling."""
    if not isinstance(text, str):
        raise _malformed(f"{what} must be a base64 string")
    max_chars = (max_bytes + 2) // 3 * 4
    if len(text) > 2 * max_chars:
        raise IdentityRefused(ErrorType.IDENTITY_TOO_LARGE, f"{what} is too large")
    compact = text.translate(_WHITESPACE)
    if len(compact) > max_chars:
        raise IdentityRefused(ErrorType.IDENTITY_TOO_LARGE, f"{what} is too large")
    if not compact.isascii():
        raise _malformed(f"{what} is not base64")
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(f"{what} is not base64") from None
    if not raw or base64.b64encode(raw).decode("ascii") != compact:
        raise _malformed(f"{what} is not canonical base64")
    if len(raw) > max_bytes:
        raise IdentityRefused(ErrorType.IDENTITY_TOO_LARGE, f"{what} is too large")
    return raw


def load_json_object(data: bytes) -> dict[str, Any]:
    """Parse signed content as one strict JSON object (see contracts.strict_json)."""
    try:
        return strict_json.loads_object(data)
    except strict_json.DuplicateKey as err:
        raise _malformed(f"{err} in signed content") from None
    except strict_json.StrictJsonError as err:
        raise _malformed(f"signed content is {err}") from None


def optional_string(document: dict[str, Any], name: str, *, max_length: int) -> str:
    """The field ``name`` of signed content: ``""`` when absent or null, else a string of at most
    ``max_length`` characters (anything else is malformed)."""
    value = document.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > max_length:
        raise _malformed(f"{name} is malformed")
    return value

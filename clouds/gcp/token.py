"""Strict parsing of a compact JWS (the GCP instance identity token), before any key is touched.

Why a parser of our own instead of pyjwt's: the verifier must refuse, with one stable error type,
every shape a token should never have, and must make sure that no two different strings verify
as the same token. pyjwt tolerates duplicate JSON keys (the last one wins), ``NaN`` literals and
non-canonical base64 (two strings that decode to the same bytes). Here:

- the whole token is at most :data:`MAX_TOKEN_BYTES`, ASCII, exactly three non-empty segments;
- each segment is canonical unpadded base64url: re-encoding its bytes gives the segment back;
- header and payload are UTF-8 JSON objects with no duplicate keys and no NaN/Infinity.

Everything wrong raises ``IdentityRefused(IdentityMalformed, ...)``; nothing else escapes.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, NoReturn

from contracts import strict_json
from contracts.errors import ErrorType, IdentityRefused

#: Largest token accepted (bytes). Real ones are ~1.2 KiB; this bounds parsing work.
MAX_TOKEN_BYTES = 16 * 1024

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class ParsedToken:
    """A structurally valid, still unverified, compact JWS."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes  # ``base64url(header) "." base64url(payload)``, exactly as received
    signature: bytes


def malformed(reason: str) -> NoReturn:
    raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, reason)


def parse_compact_jws(token: object) -> ParsedToken:
    """Split and decode ``token``; refuse (IdentityMalformed) anything that is not a clean JWS."""
    if not isinstance(token, str):
        malformed("token is not a string")
    if len(token) > MAX_TOKEN_BYTES:
        malformed(f"token is larger than {MAX_TOKEN_BYTES} bytes")
    if not token.isascii():
        malformed("token contains non-ASCII characters")
    parts = token.split(".")
    if len(parts) != 3:
        malformed(f"token has {len(parts)} segments, expected 3")
    header_b64, payload_b64, signature_b64 = parts
    header = _json_object(_b64url_decode(header_b64, "header"), "header")
    payload = _json_object(_b64url_decode(payload_b64, "payload"), "payload")
    signature = _b64url_decode(signature_b64, "signature")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return ParsedToken(header, payload, signing_input, signature)


def _b64url_decode(segment: str, what: str) -> bytes:
    """Decode canonical unpadded base64url; refuse padding, stray characters and spare bits."""
    if not segment or _SEGMENT.fullmatch(segment) is None:
        malformed(f"{what} segment is not base64url")
    if len(segment) % 4 == 1:
        malformed(f"{what} segment has an impossible base64 length")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        malformed(f"{what} segment is not base64url")
    # Non-zero spare bits in the last character decode to the same bytes as the canonical form;
    # refusing them keeps "one token string <-> one signed byte sequence".
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        malformed(f"{what} segment is not canonical base64url")
    return raw


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        return strict_json.loads_object(raw)
    except strict_json.DuplicateKey as exc:
        malformed(f"{what} has a {exc}")
    except strict_json.StrictJsonError as exc:
        malformed(f"{what} is {exc}")
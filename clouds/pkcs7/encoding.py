"""Strict ASN.1 encoding: minimal DER, or the BER that EC2's IMDS really emits.

asn1crypto alone is lenient about lengths, tags and primitive forms, and a lenient parser lets
one signed object have many spellings; :func:`check_encoding` walks every TLV first.
"""

from __future__ import annotations

from clouds.pkcs7.errors import malformed as _malformed
from contracts.errors import ErrorType, IdentityRefused

#: Largest DER document accepted (real ones are 1-3 KiB).
MAX_DER_BYTES = 64 * 1024
#: Deepest ASN.1 nesting accepted (certificates need about 10).
MAX_DEPTH = 32


def check_encoding(data: bytes, *, allow_indefinite: bool) -> None:
    """Walk every TLV of ``data`` and refuse anything but minimal DER (or, with
    ``allow_indefinite``, the BER forms AWS emits). asn1crypto alone is lenient about these, and
    a lenient parser lets one signed object have many spellings."""
    if len(data) > MAX_DER_BYTES:
        raise IdentityRefused(ErrorType.IDENTITY_TOO_LARGE, "document is too large")
    end = _scan(data, 0, len(data), 0, allow_indefinite, parent_tag=None)
    if end != len(data):
        raise _malformed("trailing bytes after the ASN.1 value")


def _scan(data: bytes, pos: int, limit: int, depth: int, ber: bool, parent_tag: int | None) -> int:
    """Check one TLV starting at ``pos``; return the position after it."""
    if depth > MAX_DEPTH:
        raise _malformed("ASN.1 nesting too deep")
    if pos + 2 > limit:
        raise _malformed("truncated ASN.1 value")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise _malformed("high-tag-number form is not used by CMS")
    if tag == 0x00:
        raise _malformed("unexpected end-of-contents marker")
    constructed = bool(tag & 0x20)
    first = data[pos + 1]
    pos += 2
    length: int | None
    if first < 0x80:
        length = first
    elif first == 0x80:
        if not (ber and constructed):
            raise _malformed("indefinite length is not DER")
        length = None
    else:
        count = first & 0x7F
        if count > 4 or first == 0xFF:
            raise _malformed("ASN.1 length too large")
        if pos + count > limit:
            raise _malformed("truncated ASN.1 length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if data[pos] == 0 or length < 0x80:
            raise _malformed("non-minimal ASN.1 length")
        pos += count
    _check_tag(tag, constructed, ber, parent_tag)
    if length is None:
        while True:
            if pos + 2 <= limit and data[pos] == 0:
                if data[pos + 1] != 0:
                    raise _malformed("malformed end-of-contents marker")
                return pos + 2
            if pos >= limit:
                raise _malformed("truncated ASN.1 value (missing end-of-contents)")
            pos = _scan(data, pos, limit, depth + 1, ber, tag)
    end = pos + length
    if end > limit:
        raise _malformed("truncated ASN.1 value")
    if constructed:
        while pos < end:
            pos = _scan(data, pos, end, depth + 1, ber, tag)
    else:
        _check_primitive(tag, data[pos:end])
    return end


def _check_tag(tag: int, constructed: bool, ber: bool, parent_tag: int | None) -> None:
    if parent_tag == 0x24 and tag not in (0x04, 0x24):
        raise _malformed("constructed OCTET STRING holds a non-OCTET STRING")
    if tag & 0xC0:  # context, application, private: either form is possible
        return
    number = tag & 0x1F
    if number in (16, 17):
        if not constructed:
            raise _malformed("primitive SEQUENCE/SET")
    elif constructed and not (ber and number == 4):
        raise _malformed("constructed string or scalar is not DER")


def _check_primitive(tag: int, value: bytes) -> None:
    if tag == 0x01 and (len(value) != 1 or value[0] not in (0x00, 0xFF)):
        raise _malformed("BOOLEAN is not DER")
    if tag == 0x02:
        if not value:
            raise _malformed("empty INTEGER")
        if len(value) > 1 and (
            (value[0] == 0x00 and value[1] < 0x80) or (value[0] == 0xFF and value[1] >= 0x80)
        ):
            raise _malformed("non-minimal INTEGER")
    if tag == 0x05 and value:
        raise _malformed("NULL with content")

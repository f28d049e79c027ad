"""The shared strict-encoding helpers of the clouds.pkcs7 package, byte by byte."""

from __future__ import annotations

import pytest

from clouds import pkcs7
from contracts.errors import ErrorType, IdentityRefused

from .conftest import LOCAL_NOW
from .pkcs7_builders import build_signed_data, make_certificate, name, rsa_key

SEQ_INT = bytes.fromhex("3003020101")  # SEQUENCE { INTEGER 1 }


def malformed(data: bytes, *, ber: bool = False) -> str:
    with pytest.raises(IdentityRefused) as caught:
        pkcs7.check_encoding(data, allow_indefinite=ber)
    assert caught.value.type is ErrorType.IDENTITY_MALFORMED
    return caught.value.reason


@pytest.mark.parametrize(
    "hex_der",
    [
        "3003020101",
        "3000",
        "0500",
        "0101ff",
        "020100",
        "0202 0080",  # 128 needs its leading zero
        "02 01 80",  # -128
        "0481 80" + "00" * 128,  # long form where it is needed
        "a003020101",  # context-specific constructed
        "8001ff",  # context-specific primitive
    ],
)
def test_der_accepted(hex_der: str) -> None:
    data = bytes.fromhex(hex_der.replace(" ", ""))
    pkcs7.check_encoding(data, allow_indefinite=False)
    pkcs7.check_encoding(data, allow_indefinite=True)


@pytest.mark.parametrize(
    ("hex_der", "fragment"),
    [
        ("3080020101 0000", "indefinite"),
        ("2480 040101 0000", "indefinite"),
        ("2403 040101", "constructed string"),
        ("3003020101 00", "trailing"),
        ("3003020101 3000", "trailing"),
        ("300402010100", "truncated"),
        ("3005020101", "truncated"),
        ("30", "truncated"),
        ("", "truncated"),
        ("308103020101", "non-minimal"),
        ("30820003020101", "non-minimal"),
        ("3085 0000000003 020101", "too large"),
        ("30ff", "too large"),
        ("1f2200", "high-tag"),
        ("0000", "end-of-contents"),
        ("1000", "primitive SEQUENCE"),
        ("0101 01", "BOOLEAN"),
        ("0200", "empty INTEGER"),
        ("0202 0001", "non-minimal INTEGER"),
        ("0202 ff80", "non-minimal INTEGER"),
        ("0501 00", "NULL"),
        ("2203 030100", "constructed string"),
    ],
)
def test_not_der(hex_der: str, fragment: str) -> None:
    assert fragment in malformed(bytes.fromhex(hex_der.replace(" ", "")))


@pytest.mark.parametrize(
    "hex_ber",
    [
        "3080 020101 0000",
        "3080 a080 2480 040101 040100 0000 0000 0000",  # the shape of EC2's eContent
        "3080 3080 0000 0000",
    ],
)
def test_ber_indefinite_accepted_only_when_allowed(hex_ber: str) -> None:
    data = bytes.fromhex(hex_ber.replace(" ", ""))
    pkcs7.check_encoding(data, allow_indefinite=True)
    assert "indefinite" in malformed(data)


@pytest.mark.parametrize(
    ("hex_ber", "fragment"),
    [
        ("3080 020101", "end-of-contents"),
        ("3080 020101 0001", "end-of-contents"),
        ("0280 0000", "indefinite"),  # primitive values never have indefinite length
        ("2480 020101 0000", "OCTET STRING"),  # a segment that is not an OCTET STRING
        ("3080 020101 0000 00", "trailing"),
        ("3080 0281 01 01 0000", "non-minimal"),
    ],
)
def test_ber_still_strict(hex_ber: str, fragment: str) -> None:
    assert fragment in malformed(bytes.fromhex(hex_ber.replace(" ", "")), ber=True)


def test_nesting_depth_is_bounded() -> None:
    deep = b"\x30\x80" * (pkcs7.MAX_DEPTH + 2) + b"\x00\x00" * (pkcs7.MAX_DEPTH + 2)
    assert "too deep" in malformed(deep, ber=True)
    shallow = b"\x30\x80" * 10 + b"\x00\x00" * 10
    pkcs7.check_encoding(shallow, allow_indefinite=True)


def test_size_cap() -> None:
    with pytest.raises(IdentityRefused) as caught:
        pkcs7.check_encoding(b"\x04\x83\x01\x00\x00" + b"\x00" * 65536, allow_indefinite=False)
    assert caught.value.type is ErrorType.IDENTITY_TOO_LARGE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("QUJD", b"ABC"),
        ("QU\nJD", b"ABC"),
        (" QUJD\r\n", b"ABC"),
        ("QQ==", b"A"),
    ],
)
def test_base64_accepted(text: str, expected: bytes) -> None:
    assert pkcs7.decode_base64(text, what="x") == expected


@pytest.mark.parametrize(
    "text", ["", "QUJ", "QUJ=", "QQ", "QQ=", "QQ==QQ==", "QU-D", "QU_D", "QUJDé", b"QUJD", None]
)
def test_base64_refused(text: object) -> None:
    with pytest.raises(IdentityRefused) as caught:
        pkcs7.decode_base64(text, what="x")
    assert caught.value.type is ErrorType.IDENTITY_MALFORMED


def test_json_object_loader() -> None:
    assert pkcs7.load_json_object(b'{"a": {"b": [1, null]}}') == {"a": {"b": [1, None]}}
    for bad in (
        b'{"a": 1, "a": 1}',
        b'{"x": {"a": 1, "a": 2}}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a": "\xff"}',
        b"{} []",
        b"",
    ):
        with pytest.raises(IdentityRefused) as caught:
            pkcs7.load_json_object(bad)
        assert caught.value.type is ErrorType.IDENTITY_MALFORMED


def test_optional_string_field() -> None:
    document = {"sku": "2022-datacenter", "empty": "", "none": None, "long": "x" * 9, "n": 5}
    assert pkcs7.optional_string(document, "sku", max_length=64) == "2022-datacenter"
    assert pkcs7.optional_string(document, "empty", max_length=8) == ""
    assert pkcs7.optional_string(document, "none", max_length=8) == ""
    assert pkcs7.optional_string(document, "absent", max_length=8) == ""
    assert pkcs7.optional_string(document, "long", max_length=9) == "x" * 9
    for field in ("long", "n"):
        with pytest.raises(IdentityRefused) as caught:
            pkcs7.optional_string(document, field, max_length=8)
        assert caught.value.type is ErrorType.IDENTITY_MALFORMED
        assert field in caught.value.reason


def test_signer_is_found_by_issuer_and_serial_not_position() -> None:
    """Two certificates from one issuer: the SignerInfo's serial number picks the right one."""
    issuer_key = rsa_key("pkcs7-issuer")
    issuer = name("pkcs7 test issuer")
    certs = [
        make_certificate(
            name(f"signer {i}"),
            rsa_key(f"pkcs7-signer-{i}"),
            issuer=issuer,
            issuer_key=issuer_key,
            not_before=LOCAL_NOW.replace(year=2024),
            not_after=LOCAL_NOW.replace(year=2026),
        )
        for i in range(2)
    ]
    der = build_signed_data(
        b"{}", key=rsa_key("pkcs7-signer-1"), signer=certs[1], embed=certs, signed_attrs=None
    )
    signed = pkcs7.parse_signed_data(
        der,
        allow_indefinite=False,
        allowed_digests=pkcs7.STRONG_DIGESTS,
        require_signed_attributes=False,
    )
    found = pkcs7.signer_certificate(signed)
    assert found.serial == certs[1].serial_number != certs[0].serial_number
    pkcs7.verify_signature(signed, certs[1].public_key())
    with pytest.raises(IdentityRefused) as caught:
        pkcs7.verify_signature(signed, certs[0].public_key())
    assert caught.value.type is ErrorType.IDENTITY_SIGNATURE_INVALID
    # The same certificate twice is not ambiguous; two different ones with one name would be.
    twice = build_signed_data(
        b"{}",
        key=rsa_key("pkcs7-signer-1"),
        signer=certs[1],
        embed=[certs[1], certs[1]],
        signed_attrs=None,
    )
    pkcs7.signer_certificate(
        pkcs7.parse_signed_data(
            twice,
            allow_indefinite=False,
            allowed_digests=pkcs7.STRONG_DIGESTS,
            require_signed_attributes=False,
        )
    )

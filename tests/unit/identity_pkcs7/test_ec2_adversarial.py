"""Forged, altered and malformed EC2 identities: each refused with its own error type."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from clouds.ec2.verify import FORMS, Ec2TrustStore, peek_ec2_instance_key, verify_ec2_identity
from contracts.errors import ErrorType, IdentityRefused

from .conftest import AWS, LOCAL_NOW, LocalEc2, ec2_document, ec2_samples, read
from .pkcs7_builders import (
    b64,
    build_signed_data,
    make_certificate,
    rsa_key,
    strip_signed_attributes,
)

TC = ec2_samples()[0]  # tc-us-west-2-2018 rsa2048
DSA = next(s for s in ec2_samples() if s.name == "vault-pkcs7")


def refused(identity: object, trust: Ec2TrustStore, **kwargs: object) -> ErrorType:
    kwargs.setdefault("now", LOCAL_NOW)
    with pytest.raises(IdentityRefused) as caught:
        verify_ec2_identity(identity, trust=trust, **kwargs)  # type: ignore[arg-type]
    return caught.value.type


def local_rsa2048(local: LocalEc2, content: bytes | None = None, **kwargs: object) -> str:
    der = build_signed_data(
        content if content is not None else ec2_document(),
        key=local.key,  # type: ignore[arg-type]
        signer=local.cert,
        **kwargs,  # type: ignore[arg-type]
    )
    return b64(der)


def test_locally_signed_document_is_accepted(local_ec2: LocalEc2) -> None:
    """Positive control: the builder makes documents the verifier accepts, so the refusals
    below are caused by the one thing each test changes."""
    result = verify_ec2_identity(
        {"rsa2048": local_rsa2048(local_ec2)}, trust=local_ec2.trust, now=LOCAL_NOW
    )
    assert result.instance_key == "111122223333/i-0123456789abcdef0"
    assert result.region == "us-west-2"


def test_cryptography_pkcs7_builder_output_is_accepted(local_ec2: LocalEc2) -> None:
    """What a local EC2 emulator can use: cryptography's own PKCS#7 builder."""
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(ec2_document())
        .add_signer(local_ec2.cert, local_ec2.key, hashes.SHA256())  # type: ignore[arg-type]
        .sign(Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    result = verify_ec2_identity({"rsa2048": b64(der)}, trust=local_ec2.trust, now=LOCAL_NOW)
    assert result.instance_id == "i-0123456789abcdef0"


def test_document_beside_the_pkcs7_must_be_the_signed_content(
    production_ec2: Ec2TrustStore,
) -> None:
    other = (AWS / "metaphor-ap-southeast-2-2026" / "document.json").read_text()
    signed = (AWS / "tc-us-west-2-2018" / "document.json").read_text()
    for beside in (other, signed + "\n", signed.replace("t2.nano", "t2.large")):
        identity = {"rsa2048": TC.identity["rsa2048"], "document": beside}
        assert refused(identity, production_ec2, now=TC.now) is (
            ErrorType.IDENTITY_DOCUMENT_MISMATCH
        )


def test_self_signed_aws_looking_embedded_certificate_does_not_help(
    production_ec2: Ec2TrustStore,
) -> None:
    pinned = production_ec2.certificate("rsa2048", "us-west-2")
    assert pinned is not None
    key = rsa_key("attacker")
    fake = make_certificate(
        pinned.subject,
        key,
        serial=pinned.serial_number,
        not_before=pinned.not_valid_before_utc,
        not_after=pinned.not_valid_after_utc,
    )
    forged = build_signed_data(ec2_document(region="us-west-2"), key=key, signer=fake, embed=[fake])
    assert refused({"rsa2048": b64(forged)}, production_ec2) is ErrorType.IDENTITY_SIGNATURE_INVALID


def test_region_without_pinned_certificate(
    production_ec2: Ec2TrustStore, local_ec2: LocalEc2
) -> None:
    for region in ("xx-fake-1", "us-west-9"):
        identity = {"rsa2048": local_rsa2048(local_ec2, ec2_document(region=region))}
        assert refused(identity, production_ec2) is ErrorType.IDENTITY_REGION_UNKNOWN
    # A pinned region for another form does not count.
    detached = {"document": ec2_document().decode(), "signature": b64(b"\x00" * 256)}
    assert refused(detached, local_ec2.trust, accepted_forms=FORMS) is (
        ErrorType.IDENTITY_REGION_UNKNOWN
    )


def test_dsa_sample_under_rsa2048_only_policy(production_ec2: Ec2TrustStore) -> None:
    assert refused(DSA.identity, production_ec2, now=DSA.now) is (
        ErrorType.IDENTITY_ALGORITHM_REFUSED
    )
    # Relabelling the DSA PKCS#7 as rsa2048 does not sneak it in either.
    relabelled = {"rsa2048": DSA.identity["pkcs7"]}
    assert refused(relabelled, production_ec2, now=DSA.now) is (
        ErrorType.IDENTITY_ALGORITHM_REFUSED
    )
    # Nor does presenting the RSA PKCS#7 as the DSA form (the pinned key is DSA).
    as_pkcs7 = {"pkcs7": TC.identity["rsa2048"]}
    assert refused(as_pkcs7, production_ec2, now=TC.now, accepted_forms=FORMS) is (
        ErrorType.IDENTITY_ALGORITHM_REFUSED
    )


def test_two_signer_infos(local_ec2: LocalEc2) -> None:
    identity = {"rsa2048": local_rsa2048(local_ec2, extra_signer_infos=1)}
    assert refused(identity, local_ec2.trust) is ErrorType.IDENTITY_MALFORMED


def test_signed_attributes_are_required(local_ec2: LocalEc2, production_ec2: Ec2TrustStore) -> None:
    stripped = strip_signed_attributes(base64.b64decode(TC.identity["rsa2048"]))
    assert refused({"rsa2048": b64(stripped)}, production_ec2, now=TC.now) is (
        ErrorType.IDENTITY_MALFORMED
    )
    # Even when the signature then covers the content itself.
    bare = {"rsa2048": local_rsa2048(local_ec2, signed_attrs=None)}
    assert refused(bare, local_ec2.trust) is ErrorType.IDENTITY_MALFORMED


def test_message_digest_mismatch(local_ec2: LocalEc2) -> None:
    identity = {"rsa2048": local_rsa2048(local_ec2, message_digest=b"\x01" * 32)}
    assert refused(identity, local_ec2.trust) is ErrorType.IDENTITY_SIGNATURE_INVALID


def test_weak_digest_refused_for_rsa2048(local_ec2: LocalEc2) -> None:
    identity = {"rsa2048": local_rsa2048(local_ec2, digest="sha1")}
    assert refused(identity, local_ec2.trust) is ErrorType.IDENTITY_ALGORITHM_REFUSED


def test_duplicate_json_keys_in_signed_content(local_ec2: LocalEc2) -> None:
    text = ec2_document().decode().rstrip("}") + ',\n  "accountId" : "999999999999"\n}'
    assert json.loads(text)["accountId"] == "999999999999"  # a lenient parser's reading
    identity = {"rsa2048": local_rsa2048(local_ec2, text.encode())}
    assert refused(identity, local_ec2.trust) is ErrorType.IDENTITY_MALFORMED
    with pytest.raises(IdentityRefused) as caught:
        peek_ec2_instance_key(identity)
    assert caught.value.type is ErrorType.IDENTITY_MALFORMED


@pytest.mark.parametrize(
    "content", [b"[]", b'"us-west-2"', b"null", b"{", b"\xff\xfe{}", b'{"a": NaN}']
)
def test_signed_content_that_is_not_a_json_object(local_ec2: LocalEc2, content: bytes) -> None:
    identity = {"rsa2048": local_rsa2048(local_ec2, content)}
    assert refused(identity, local_ec2.trust) is ErrorType.IDENTITY_MALFORMED


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"accountId": None}, ErrorType.IDENTITY_CLAIMS_MISSING),
        ({"instanceId": None}, ErrorType.IDENTITY_CLAIMS_MISSING),
        ({"pendingTime": None}, ErrorType.IDENTITY_CLAIMS_MISSING),
        ({"region": None}, ErrorType.IDENTITY_CLAIMS_MISSING),
        ({"accountId": 111122223333}, ErrorType.IDENTITY_MALFORMED),
        ({"accountId": "1111-2222-3333"}, ErrorType.IDENTITY_MALFORMED),
        ({"instanceId": "i-0123/../x"}, ErrorType.IDENTITY_MALFORMED),
        ({"pendingTime": "2025-06-01 11:00:00"}, ErrorType.IDENTITY_MALFORMED),
        ({"pendingTime": "2025-02-30T11:00:00Z"}, ErrorType.IDENTITY_MALFORMED),
        ({"region": "US-WEST-2"}, ErrorType.IDENTITY_MALFORMED),
        ({"instanceType": ["t3.micro"]}, ErrorType.IDENTITY_MALFORMED),
        ({"pendingTime": "2025-06-01T12:02:00Z"}, ErrorType.IDENTITY_NOT_YET_VALID),
    ],
)
def test_claims(local_ec2: LocalEc2, overrides: dict[str, object], expected: ErrorType) -> None:
    identity = {"rsa2048": local_rsa2048(local_ec2, ec2_document(**overrides))}
    assert refused(identity, local_ec2.trust) is expected


def test_detached_signature_over_an_altered_document(production_ec2: Ec2TrustStore) -> None:
    sample = next(s for s in ec2_samples() if s.name == "tc-signature")
    altered = dict(sample.identity, document=sample.identity["document"].replace("nano", "nanO"))
    assert refused(altered, production_ec2, now=sample.now, accepted_forms=FORMS) is (
        ErrorType.IDENTITY_SIGNATURE_INVALID
    )


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        ("not a dict", ErrorType.IDENTITY_MALFORMED),
        ([TC.identity], ErrorType.IDENTITY_MALFORMED),
        ({}, ErrorType.IDENTITY_MALFORMED),
        ({"rsa2048": TC.identity["rsa2048"], "extra": "x"}, ErrorType.IDENTITY_MALFORMED),
        ({"rsa2048": TC.identity["rsa2048"], "pkcs7": "AAAA"}, ErrorType.IDENTITY_MALFORMED),
        ({"rsa2048": 12345}, ErrorType.IDENTITY_MALFORMED),
        ({"rsa2048": TC.identity["rsa2048"], "document": 7}, ErrorType.IDENTITY_MALFORMED),
        ({"signature": "AAAA"}, ErrorType.IDENTITY_CLAIMS_MISSING),
        ({"rsa2048": "not base64!"}, ErrorType.IDENTITY_MALFORMED),
        ({"rsa2048": "QUJ="}, ErrorType.IDENTITY_MALFORMED),  # non-canonical padding bits
        ({"rsa2048": "AAAA" * 30_000}, ErrorType.IDENTITY_TOO_LARGE),
        ({"rsa2048": "A" * 1_000_000}, ErrorType.IDENTITY_TOO_LARGE),
        ({"rsa2048": b64(b"\x30\x03\x02\x01")}, ErrorType.IDENTITY_MALFORMED),
    ],
)
def test_shape_and_transport(
    identity: object, expected: ErrorType, production_ec2: Ec2TrustStore
) -> None:
    assert refused(identity, production_ec2, now=TC.now, accepted_forms=FORMS) is expected
    if expected is not ErrorType.IDENTITY_CLAIMS_MISSING:
        with pytest.raises(IdentityRefused):
            peek_ec2_instance_key(identity)  # type: ignore[arg-type]


def test_oversized_detached_document(production_ec2: Ec2TrustStore) -> None:
    identity = {"document": " " * 20_000 + "{}", "signature": "AAAA"}
    assert refused(identity, production_ec2, accepted_forms=FORMS) is ErrorType.IDENTITY_TOO_LARGE


def test_der_damage(production_ec2: Ec2TrustStore) -> None:
    der = base64.b64decode(TC.identity["rsa2048"])
    damaged = {
        "truncated": der[:-10],
        "trailing garbage": der + b"\x00",
        "trailing element": der + b"\x05\x00",
        "missing end-of-contents": der[:-2],
        "non-minimal length": der[:531] + b"\x31\x83\x00\x01\xff" + der[535:],
    }
    for label, data in damaged.items():
        assert refused({"rsa2048": b64(data)}, production_ec2, now=TC.now) is (
            ErrorType.IDENTITY_MALFORMED
        ), label


def test_rsa2048_sample_with_line_breaks_and_pem_body(production_ec2: Ec2TrustStore) -> None:
    """IMDS wraps base64; the PEM body of the same bytes is the same document."""
    pem = read(AWS / "tc-us-west-2-2018" / "rsa2048.pem")
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    for text in (body, "\r\n".join(body[i : i + 64] for i in range(0, len(body), 64))):
        result = verify_ec2_identity({"rsa2048": text}, trust=production_ec2, now=TC.now)
        assert result.instance_id == TC.instance
    with pytest.raises(IdentityRefused) as caught:
        verify_ec2_identity({"rsa2048": pem}, trust=production_ec2, now=TC.now)
    assert caught.value.type is ErrorType.IDENTITY_MALFORMED  # PEM armour is not base64


def test_naive_clock_is_a_programming_error(production_ec2: Ec2TrustStore) -> None:
    with pytest.raises(ValueError):
        verify_ec2_identity(TC.identity, trust=production_ec2, now=TC.now.replace(tzinfo=None))

"""Forged, altered and malformed Azure attested documents, built with a local CA so that only
the property under test can refuse them."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from clouds.azure.verify import san_matches, verify_azure_attested
from contracts.errors import ErrorType, IdentityRefused

from .conftest import AZURE, LOCAL_NOW, azure_document, azure_samples
from .pkcs7_builders import (
    EMAIL_PROTECTION,
    SERVER_AUTH,
    LocalChain,
    b64,
    build_signed_data,
    make_certificate,
    make_chain,
    name,
    outer_indefinite,
    rsa_key,
    strip_signed_attributes,
)

NONCE = "challenge0001"
REDHAT = azure_samples()[0]


def attested(der: bytes) -> dict[str, str]:
    return {"encoding": "pkcs7", "signature": b64(der)}


def sign(chain: LocalChain, content: bytes | None = None, **kwargs: object) -> bytes:
    kwargs.setdefault("signed_attrs", None)  # the IMDS form
    kwargs.setdefault("embed", [chain.leaf])
    return build_signed_data(
        content if content is not None else azure_document(),
        key=chain.leaf_key,
        signer=chain.leaf,
        **kwargs,  # type: ignore[arg-type]
    )


def check(doc: object, chain: LocalChain, **kwargs: object):
    kwargs.setdefault("nonce", NONCE)
    kwargs.setdefault("now", LOCAL_NOW)
    kwargs.setdefault("roots", [chain.root])
    kwargs.setdefault("intermediates", [chain.intermediate])
    return verify_azure_attested(doc, **kwargs)  # type: ignore[arg-type]


def refused(doc: object, chain: LocalChain, **kwargs: object) -> ErrorType:
    with pytest.raises(IdentityRefused) as caught:
        check(doc, chain, **kwargs)
    return caught.value.type


# --- positive controls: what a local IMDS emulator may produce ---------------------------------


def test_imds_form_without_signed_attributes_is_accepted(local_chain: LocalChain) -> None:
    result = check(attested(sign(local_chain)), local_chain)
    assert result.instance_id == "7d6c5b4a-3921-4f0e-8d7c-6b5a49382716"
    assert result.cloud_account == "0b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"
    assert result.evidence["signer_san"] == "eastus.metadata.azure.com"


def test_signed_attributes_and_embedded_intermediate_are_accepted(
    local_chain: LocalChain,
) -> None:
    der = sign(
        local_chain, signed_attrs="default", embed=[local_chain.intermediate, local_chain.leaf]
    )
    assert check(attested(der), local_chain, intermediates=[]).instance_id


def test_cryptography_pkcs7_builder_output_is_accepted(local_chain: LocalChain) -> None:
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(azure_document())
        .add_signer(local_chain.leaf, local_chain.leaf_key, hashes.SHA256())
        .add_certificate(local_chain.intermediate)
        .sign(Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    assert check(attested(der), local_chain, intermediates=[]).instance_id


def test_server_auth_only_leaf_is_accepted() -> None:
    chain = make_chain(LOCAL_NOW, ekus=[SERVER_AUTH], label="serveronly")
    assert check(attested(sign(chain)), chain).instance_id


@pytest.mark.parametrize("ekus", [[EMAIL_PROTECTION], None], ids=["smime-only", "no-eku"])
def test_leaf_without_a_tls_purpose_is_untrusted(
    ekus: Sequence[x509.ObjectIdentifier] | None,
) -> None:
    chain = make_chain(LOCAL_NOW, ekus=ekus, label="noteku")
    assert refused(attested(sign(chain)), chain) is ErrorType.IDENTITY_CERTIFICATE_UNTRUSTED


# --- signer identity ---------------------------------------------------------------------------


def test_real_metadata_certificate_first_and_document_signed_by_another_key(
    azure_roots: list, azure_intermediates: list
) -> None:
    real = x509.load_pem_x509_certificate(
        (AZURE / "redhat-westeurope-2021" / "signer-cert-embedded.pem").read_bytes()
    )
    key = rsa_key("azure-attacker")
    own = make_certificate(
        name("metadata.azure.com"),
        key,
        sans=["westeurope.metadata.azure.com"],
        ekus=[SERVER_AUTH],
        not_before=real.not_valid_before_utc,
        not_after=real.not_valid_after_utc,
    )
    content = azure_document(
        nonce=REDHAT.nonce,
        timeStamp={"createdOn": "01/04/21 13:55:34 -0000", "expiresOn": "01/04/21 19:55:34 -0000"},
    )
    trust = {"roots": azure_roots, "intermediates": azure_intermediates}
    # The SignerInfo names the attacker's certificate: its chain is what gets checked.
    named_own = build_signed_data(
        content, key=key, signer=own, embed=[real, own], signed_attrs=None
    )
    # The SignerInfo names the real certificate: the signature must then verify with its key.
    named_real = build_signed_data(
        content, key=key, signer=real, embed=[real, own], signed_attrs=None
    )
    for der, expected in (
        (named_own, ErrorType.IDENTITY_CERTIFICATE_UNTRUSTED),
        (named_real, ErrorType.IDENTITY_SIGNATURE_INVALID),
    ):
        with pytest.raises(IdentityRefused) as caught:
            verify_azure_attested(attested(der), nonce=REDHAT.nonce, now=REDHAT.now, **trust)
        assert caught.value.type is expected


def test_signer_certificate_missing(local_chain: LocalChain) -> None:
    der = sign(local_chain, embed=[local_chain.intermediate])
    assert refused(attested(der), local_chain) is ErrorType.IDENTITY_CERTIFICATE_UNTRUSTED


def test_chain_to_a_root_not_trusted(local_chain: LocalChain) -> None:
    other = make_chain(LOCAL_NOW, label="other-ca")
    assert (
        refused(attested(sign(local_chain)), local_chain, roots=[other.root])
        is ErrorType.IDENTITY_CERTIFICATE_UNTRUSTED
    )


@pytest.mark.parametrize(
    "san",
    [
        "metadata.azure.com.evil.net",
        "xmetadata.azure.com",
        "a.b.metadata.azure.com",
        "evil-metadata.azure.com",
        "metadata.azure.co",
        "*.azure.com",
        "-x.metadata.azure.com",
    ],
)
def test_subject_alternative_name_not_for_azure_metadata(san: str) -> None:
    chain = make_chain(LOCAL_NOW, sans=[san], label="san")
    assert refused(attested(sign(chain)), chain) is ErrorType.IDENTITY_SUBJECT_MISMATCH


@pytest.mark.parametrize(
    "san", ["metadata.azure.com", "*.metadata.azure.com", "westeurope.metadata.azure.com"]
)
def test_subject_alternative_names_accepted(san: str) -> None:
    chain = make_chain(LOCAL_NOW, sans=["unrelated.example", san], label="san")
    assert check(attested(sign(chain)), chain).evidence["signer_san"] == san


def test_allowed_san_domains_is_configurable() -> None:
    chain = make_chain(LOCAL_NOW, sans=["eastus.metadata.fleetpatch.test"], label="san")
    doc = attested(sign(chain))
    assert refused(doc, chain) is ErrorType.IDENTITY_SUBJECT_MISMATCH
    assert check(doc, chain, allowed_san_domains=["metadata.fleetpatch.test"]).instance_id
    assert san_matches("EastUS.Metadata.Azure.com", "metadata.azure.com")


# --- CMS structure -----------------------------------------------------------------------------


def test_two_signer_infos(local_chain: LocalChain) -> None:
    der = sign(local_chain, extra_signer_infos=1)
    assert refused(attested(der), local_chain) is ErrorType.IDENTITY_MALFORMED


def test_signed_attributes_stripped(local_chain: LocalChain) -> None:
    der = strip_signed_attributes(sign(local_chain, signed_attrs="default"))
    assert refused(attested(der), local_chain) is ErrorType.IDENTITY_SIGNATURE_INVALID


def test_no_signed_attributes_and_a_signature_over_other_content(local_chain: LocalChain) -> None:
    genuine = cms.ContentInfo.load(
        sign(local_chain, azure_document(vmId="6e1f2a3b-0000-4000-8000-000000000001"))
    )
    forged = cms.ContentInfo.load(sign(local_chain))
    forged["content"]["signer_infos"][0]["signature"] = genuine["content"]["signer_infos"][0][
        "signature"
    ].native
    der = forged.dump(force=True)
    assert refused(attested(der), local_chain) is ErrorType.IDENTITY_SIGNATURE_INVALID


def test_message_digest_mismatch(local_chain: LocalChain) -> None:
    der = sign(local_chain, signed_attrs="default", message_digest=b"\x00" * 32)
    assert refused(attested(der), local_chain) is ErrorType.IDENTITY_SIGNATURE_INVALID


def test_content_type_attribute_required(local_chain: LocalChain) -> None:
    digest = hashlib.sha256(azure_document()).digest()
    only_digest = [cms.CMSAttribute({"type": "message_digest", "values": [digest]})]
    der = sign(local_chain, signed_attrs=only_digest)
    assert refused(attested(der), local_chain) is ErrorType.IDENTITY_MALFORMED


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"digest": "sha1"}, ErrorType.IDENTITY_ALGORITHM_REFUSED),
        ({"signature_oid": "sha384_rsa"}, ErrorType.IDENTITY_ALGORITHM_REFUSED),
        ({"signature_oid": "rsassa_pss"}, ErrorType.IDENTITY_ALGORITHM_REFUSED),
        ({"digest_oid": "1.2.840.113549.1.1.11"}, None),  # Azure's own quirk: accepted
        ({"content_type": "signed_data"}, ErrorType.IDENTITY_MALFORMED),
    ],
)
def test_algorithms(local_chain: LocalChain, kwargs: dict, expected: ErrorType | None) -> None:
    der = sign(local_chain, **kwargs) if "content_type" not in kwargs else None
    if der is None:
        der = _with_encapsulated_type(sign(local_chain), kwargs["content_type"])
    if expected is None:
        assert check(attested(der), local_chain).instance_id
    else:
        assert refused(attested(der), local_chain) is expected


def _with_encapsulated_type(der: bytes, content_type: str) -> bytes:
    info = cms.ContentInfo.load(der)
    info["content"]["encap_content_info"]["content_type"] = content_type
    return info.dump(force=True)


# --- signed content ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"nonce": "challenge0002"}, ErrorType.IDENTITY_NONCE_MISMATCH),
        ({"nonce": None}, ErrorType.IDENTITY_NONCE_MISMATCH),
        ({"nonce": 1}, ErrorType.IDENTITY_MALFORMED),
        ({"vmId": None}, ErrorType.IDENTITY_CLAIMS_MISSING),
        ({"vmId": ""}, ErrorType.IDENTITY_CLAIMS_MISSING),
        ({"vmId": "not-a-uuid"}, ErrorType.IDENTITY_MALFORMED),
        ({"vmId": ["7d6c5b4a-3921-4f0e-8d7c-6b5a49382716"]}, ErrorType.IDENTITY_MALFORMED),
        ({"subscriptionId": "sub"}, ErrorType.IDENTITY_MALFORMED),
        ({"timeStamp": None}, ErrorType.IDENTITY_CLAIMS_MISSING),
        ({"timeStamp": "06/01/25 11:58:00 -0000"}, ErrorType.IDENTITY_MALFORMED),
        (
            {"timeStamp": {"createdOn": "06/01/25 11:58:00 -0000"}},
            ErrorType.IDENTITY_CLAIMS_MISSING,
        ),
        (
            {
                "timeStamp": {
                    "createdOn": "2025-06-01T11:58:00Z",
                    "expiresOn": "06/01/25 17:58:00 -0000",
                }
            },
            ErrorType.IDENTITY_MALFORMED,
        ),
        (
            {
                "timeStamp": {
                    "createdOn": "13/01/25 11:58:00 -0000",
                    "expiresOn": "06/01/25 17:58:00 -0000",
                }
            },
            ErrorType.IDENTITY_MALFORMED,
        ),
        (
            {
                "timeStamp": {
                    "createdOn": "06/01/25 11:58:00 -0000",
                    "expiresOn": "06/01/25 11:58:00 -0000",
                }
            },
            ErrorType.IDENTITY_MALFORMED,
        ),
        (
            {
                "timeStamp": {
                    "createdOn": "06/01/25 05:00:00 -0000",
                    "expiresOn": "06/01/25 11:00:00 -0000",
                }
            },
            ErrorType.IDENTITY_EXPIRED,
        ),
        (
            {
                "timeStamp": {
                    "createdOn": "06/01/25 11:30:00 -0000",
                    "expiresOn": "06/01/25 17:30:00 -0000",
                }
            },
            ErrorType.IDENTITY_EXPIRED,
        ),
        (
            {
                "timeStamp": {
                    "createdOn": "06/01/25 12:05:00 -0000",
                    "expiresOn": "06/01/25 18:05:00 -0000",
                }
            },
            ErrorType.IDENTITY_NOT_YET_VALID,
        ),
    ],
)
def test_claims(local_chain: LocalChain, overrides: dict, expected: ErrorType) -> None:
    der = sign(local_chain, azure_document(**overrides))
    assert refused(attested(der), local_chain) is expected


def test_missing_subscription_is_refused(local_chain: LocalChain) -> None:
    der = sign(local_chain, azure_document(subscriptionId=None, sku=None))
    assert refused(attested(der), local_chain) is ErrorType.IDENTITY_CLAIMS_MISSING
    # Only offline inspection may look at such a document: it names no account.
    result = check(attested(der), local_chain, require_subscription=False)
    assert result.cloud_account == "" and result.evidence["sku"] == ""


def test_duplicate_json_keys_in_signed_content(local_chain: LocalChain) -> None:
    text = azure_document().decode()[:-1] + ',"vmId":"00000000-0000-4000-8000-000000000000"}'
    der = sign(local_chain, text.encode())
    assert refused(attested(der), local_chain) is ErrorType.IDENTITY_MALFORMED


@pytest.mark.parametrize(
    "content", [b"[]", b"1", b'"x"', b"", b"{}{}", b"{'a':1}", b"\xef\xbb\xbf{}"]
)
def test_content_that_is_not_one_json_object(local_chain: LocalChain, content: bytes) -> None:
    assert (
        refused(attested(sign(local_chain, content)), local_chain) is ErrorType.IDENTITY_MALFORMED
    )


# --- transport ---------------------------------------------------------------------------------


def test_transport_damage(local_chain: LocalChain) -> None:
    der = sign(local_chain)
    cases = {
        "ber indefinite length": (attested(outer_indefinite(der)), ErrorType.IDENTITY_MALFORMED),
        "trailing garbage": (attested(der + b"\x00\x00"), ErrorType.IDENTITY_MALFORMED),
        "truncated": (attested(der[:-1]), ErrorType.IDENTITY_MALFORMED),
        "bad base64": ({"encoding": "pkcs7", "signature": "***"}, ErrorType.IDENTITY_MALFORMED),
        "oversized": (attested(b"\x30" * 70_000), ErrorType.IDENTITY_TOO_LARGE),
        "wrong encoding": (
            {"encoding": "jws", "signature": b64(der)},
            ErrorType.IDENTITY_MALFORMED,
        ),
        "signature not a string": (
            {"encoding": "pkcs7", "signature": 5},
            ErrorType.IDENTITY_MALFORMED,
        ),
        "not an object": ("pkcs7", ErrorType.IDENTITY_MALFORMED),
        "no signature": ({"encoding": "pkcs7"}, ErrorType.IDENTITY_MALFORMED),
    }
    for label, (doc, expected) in cases.items():
        assert refused(doc, local_chain) is expected, label


def test_real_sample_reencoded_with_indefinite_length(
    azure_roots: list, azure_intermediates: list
) -> None:
    der = base64.b64decode(REDHAT.attested["signature"])
    with pytest.raises(IdentityRefused) as caught:
        verify_azure_attested(
            attested(outer_indefinite(der)),
            nonce=REDHAT.nonce,
            roots=azure_roots,
            intermediates=azure_intermediates,
            now=REDHAT.now,
        )
    assert caught.value.type is ErrorType.IDENTITY_MALFORMED

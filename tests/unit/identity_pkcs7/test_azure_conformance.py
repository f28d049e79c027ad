"""Real Azure IMDS attested documents against the roots shipped in clouds/azure/trust."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from clouds.azure.verify import (
    load_certificates,
    peek_azure_instance_key,
    production_roots,
    trust_from_settings,
    verify_azure_attested,
)
from contracts.errors import ErrorType, IdentityRefused
from contracts.providers import Provider

from .conftest import AZURE, AzureSample, azure_samples

SAMPLES = {s.name: s for s in azure_samples()}
REDHAT, CODER = SAMPLES["redhat-westeurope-2021"], SAMPLES["coder-eastus-2024"]
RESOURCE = "/subscriptions/{}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"


def verify(sample: AzureSample, roots: list, intermediates: list, **kwargs: object):
    kwargs.setdefault("now", sample.now)
    kwargs.setdefault("nonce", sample.nonce)
    # The 2021 sample predates subscriptionId (refused in production, test below); it still
    # serves every cryptographic check.
    kwargs.setdefault("require_subscription", sample is not REDHAT)
    return verify_azure_attested(
        sample.attested,
        roots=roots,
        intermediates=intermediates,
        **kwargs,  # type: ignore[arg-type]
    )


def refused(sample: AzureSample, roots: list, intermediates: list, **kwargs: object) -> ErrorType:
    with pytest.raises(IdentityRefused) as caught:
        verify(sample, roots, intermediates, **kwargs)
    return caught.value.type


@pytest.mark.parametrize("sample", list(SAMPLES.values()), ids=lambda s: s.name)
def test_production_sample_accepted(
    sample: AzureSample, azure_roots: list, azure_intermediates: list
) -> None:
    result = verify(sample, azure_roots, azure_intermediates)
    assert result.provider is Provider.AZURE
    assert result.instance_id == sample.vm_id
    assert result.cloud_account == sample.subscription
    assert result.issued_at <= sample.now
    der = base64.b64decode(sample.attested["signature"])
    content = (AZURE / sample.name / "content.json").read_bytes().rstrip(b"\n")
    assert content in der
    assert result.evidence["content_sha256"] == hashlib.sha256(content).hexdigest()
    embedded = x509.load_pem_x509_certificate(
        (AZURE / sample.name / "signer-cert-embedded.pem").read_bytes()
    )
    assert result.evidence["signer_cert_sha256"] == embedded.fingerprint(hashes.SHA256()).hex()
    assert result.evidence["signer_san"].endswith(".metadata.azure.com")


def test_evidence_names_the_chain(azure_roots: list, azure_intermediates: list) -> None:
    redhat = verify(REDHAT, azure_roots, azure_intermediates).evidence
    coder = verify(CODER, azure_roots, azure_intermediates).evidence
    assert "Baltimore CyberTrust Root" in redhat["chain_root_subject"]
    assert "DigiCert Global Root G2" in coder["chain_root_subject"]
    assert coder["sku"] == "20_04-lts-gen2" and redhat["sku"] == ""
    assert redhat["signer_subject"] == "CN=metadata.azure.com"


def test_each_root_serves_only_its_own_chain(azure_roots: list, azure_intermediates: list) -> None:
    g2 = [r for r in azure_roots if "Global Root G2" in r.subject.rfc4514_string()]
    assert verify(CODER, g2, azure_intermediates).instance_id == CODER.vm_id
    assert refused(REDHAT, g2, azure_intermediates) is ErrorType.IDENTITY_CERTIFICATE_UNTRUSTED


def test_intermediates_are_needed(azure_roots: list) -> None:
    for sample in SAMPLES.values():
        assert refused(sample, azure_roots, []) is ErrorType.IDENTITY_CERTIFICATE_UNTRUSTED


def test_self_signed_test_signer_refused(azure_roots: list, azure_intermediates: list) -> None:
    attested = {
        "encoding": "pkcs7",
        "signature": (AZURE / "msdocs-testsubdomain-2018" / "signature.b64").read_text(),
    }
    with pytest.raises(IdentityRefused) as caught:
        verify_azure_attested(
            attested,
            nonce="1234566766",
            roots=azure_roots,
            intermediates=azure_intermediates,
            now=REDHAT.now.replace(year=2018, month=11, day=20, hour=22, minute=8),
            require_nonce=True,
        )
    assert caught.value.type is ErrorType.IDENTITY_CERTIFICATE_UNTRUSTED


def test_the_chain_is_validated_at_now(azure_roots: list, azure_intermediates: list) -> None:
    # The signer certificate expired 2021-12-03; with a huge max_age only the chain can refuse.
    late = REDHAT.now + timedelta(days=400)
    assert (
        refused(REDHAT, azure_roots, azure_intermediates, now=late, max_age=timedelta(days=1000))
        is ErrorType.IDENTITY_CERTIFICATE_UNTRUSTED
    )


@pytest.mark.parametrize(
    ("shift", "max_age", "expected"),
    [
        (timedelta(hours=-1), timedelta(minutes=10), ErrorType.IDENTITY_NOT_YET_VALID),
        (timedelta(minutes=11), timedelta(minutes=10), ErrorType.IDENTITY_EXPIRED),
        (timedelta(hours=6), timedelta(days=1), ErrorType.IDENTITY_EXPIRED),  # expiresOn
    ],
)
def test_freshness(
    shift: timedelta,
    max_age: timedelta,
    expected: ErrorType,
    azure_roots: list,
    azure_intermediates: list,
) -> None:
    created = REDHAT.now.replace(minute=55, second=34)
    assert (
        refused(REDHAT, azure_roots, azure_intermediates, now=created + shift, max_age=max_age)
        is expected
    )
    # Just inside each bound the same document is accepted.
    verify(REDHAT, azure_roots, azure_intermediates, now=created + timedelta(seconds=59))
    verify(
        REDHAT,
        azure_roots,
        azure_intermediates,
        now=created + timedelta(hours=5, minutes=59),
        max_age=timedelta(days=1),
    )


def test_nonce(azure_roots: list, azure_intermediates: list) -> None:
    for wrong in ("20210104-195535", "", "20210104-19553"):
        assert (
            refused(REDHAT, azure_roots, azure_intermediates, nonce=wrong)
            is ErrorType.IDENTITY_NONCE_MISMATCH
        )
    assert (
        refused(REDHAT, azure_roots, azure_intermediates, nonce=None)
        is ErrorType.IDENTITY_NONCE_MISMATCH
    )
    relaxed = verify(REDHAT, azure_roots, azure_intermediates, nonce=None, require_nonce=False)
    assert relaxed.instance_id == REDHAT.vm_id


def test_peek(azure_roots: list) -> None:
    sub = "05e8b285-4ce1-46a3-b4c9-f51ba67d6acc"
    assert peek_azure_instance_key(CODER.attested, None) == (sub, CODER.vm_id)
    assert peek_azure_instance_key(CODER.attested, RESOURCE.format(sub.upper())) == (
        sub,
        CODER.vm_id,
    )
    other = "11111111-2222-4333-8444-555555555555"
    cases = [
        # No subscriptionId in the document: never taken from the unsigned resource id.
        (REDHAT.attested, RESOURCE.format(other), ErrorType.IDENTITY_CLAIMS_MISSING),
        (REDHAT.attested, None, ErrorType.IDENTITY_CLAIMS_MISSING),
        (CODER.attested, RESOURCE.format(other), ErrorType.IDENTITY_DOCUMENT_MISMATCH),
        (REDHAT.attested, "/subscriptions/not-a-uuid/x", ErrorType.IDENTITY_MALFORMED),
        (REDHAT.attested, "subscriptions", ErrorType.IDENTITY_MALFORMED),
        ({"encoding": "pkcs7", "signature": "AAAA"}, None, ErrorType.IDENTITY_MALFORMED),
        ("nope", None, ErrorType.IDENTITY_MALFORMED),
    ]
    for attested, resource_id, expected in cases:
        with pytest.raises(IdentityRefused) as caught:
            peek_azure_instance_key(attested, resource_id)  # type: ignore[arg-type]
        assert caught.value.type is expected, (resource_id, expected)


def test_a_document_without_subscription_is_refused(azure_roots: list, azure_intermediates: list) -> None:
    assert (
        refused(REDHAT, azure_roots, azure_intermediates, require_subscription=True)
        is ErrorType.IDENTITY_CLAIMS_MISSING
    )


def test_trust_material(tmp_path: Path) -> None:
    roots, intermediates = trust_from_settings(None, None)
    subjects = {r.subject.rfc4514_string() for r in roots}
    assert len(roots) == 4 and len(intermediates) == 2
    assert any("Microsoft RSA Root Certificate Authority 2017" in s for s in subjects)
    assert any("DigiCert Global Root CA" in s for s in subjects)
    bundle = tmp_path / "roots.pem"
    bundle.write_bytes((AZURE / "digicert-global-root-g2.pem").read_bytes())
    only_g2, _ = trust_from_settings(bundle, None)
    assert only_g2 == load_certificates(bundle.read_bytes())
    assert only_g2[0] in production_roots()
    with pytest.raises(ValueError):
        load_certificates(b"not a certificate")


def test_programming_errors(azure_intermediates: list, azure_roots: list) -> None:
    with pytest.raises(ValueError):
        verify(REDHAT, [], azure_intermediates)
    with pytest.raises(ValueError):
        verify(REDHAT, azure_roots, azure_intermediates, now=REDHAT.now.replace(tzinfo=None))


def test_signer_certificate_with_an_unknown_key_algorithm(
    azure_roots: list, azure_intermediates: list
) -> None:
    """Found by the mutation property: cryptography parses a certificate's key lazily."""
    der = base64.b64decode(CODER.attested["signature"])
    # rsaEncryption + NULL parameters -> one unknown OID 1.2.840.113549.1.1.1.5.0, same length
    rsa_encryption = bytes.fromhex("06092a864886f70d0101010500")
    assert der.count(rsa_encryption) == 2  # the leaf's key, then the SignerInfo's algorithm
    damaged = der.replace(rsa_encryption, bytes.fromhex("060b2a864886f70d0101010500"), 1)
    doc = {"encoding": "pkcs7", "signature": base64.b64encode(damaged).decode()}
    with pytest.raises(IdentityRefused) as caught:
        verify_azure_attested(
            doc,
            nonce=CODER.nonce,
            roots=azure_roots,
            intermediates=azure_intermediates,
            now=CODER.now,
        )
    assert caught.value.type is ErrorType.IDENTITY_ALGORITHM_REFUSED


def test_signer_certificate_whose_subject_cryptography_cannot_model(
    azure_roots: list, azure_intermediates: list
) -> None:
    """Found by the mutation property: a CN typed BIT STRING makes cryptography raise
    TypeError when the subject is first read."""
    der = base64.b64decode(CODER.attested["signature"])
    common_name = bytes.fromhex("0603550403") + b"\x13\x12metadata.azure.com"
    assert der.count(common_name) == 1
    damaged = der.replace(
        common_name, bytes.fromhex("0603550403") + b"\x03\x12\x00etadata.azure.com"
    )
    doc = {"encoding": "pkcs7", "signature": base64.b64encode(damaged).decode()}
    with pytest.raises(IdentityRefused) as caught:
        verify_azure_attested(
            doc,
            nonce=CODER.nonce,
            roots=azure_roots,
            intermediates=azure_intermediates,
            now=CODER.now,
        )
    assert caught.value.type is ErrorType.IDENTITY_MALFORMED

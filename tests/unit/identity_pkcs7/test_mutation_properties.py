"""Property: whatever bytes arrive, the verifiers answer with a verified identity or an
IdentityRefused, never another exception; and a mutated document is either refused or proves
exactly what the original proved (a change outside the signed bytes, e.g. in an unsigned
certificate field, cannot change the identity)."""

from __future__ import annotations

import base64
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clouds.azure.verify import (
    peek_azure_instance_key,
    production_intermediates,
    production_roots,
    verify_azure_attested,
)
from clouds.ec2.verify import FORMS, Ec2TrustStore, peek_ec2_instance_key, verify_ec2_identity
from contracts.errors import IdentityRefused
from contracts.identity import VerifiedIdentity

from .conftest import LOCAL_NOW, azure_document, azure_samples, ec2_samples
from .pkcs7_builders import LocalChain, b64, build_signed_data

EC2 = {s.name: s for s in ec2_samples()}
TC_RSA2048 = EC2["tc-rsa2048"]
TC_DSA = EC2["tc-pkcs7"]
TC_DETACHED = EC2["tc-signature"]
CODER = azure_samples()[1]
TRUST = Ec2TrustStore.production()
ROOTS, INTERMEDIATES = list(production_roots()), list(production_intermediates())
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """One byte-level edit: flip bits, insert, delete, overwrite or truncate."""
    data = bytearray(original)
    op = draw(st.sampled_from(["flip", "insert", "delete", "set", "truncate"]))
    at = draw(st.integers(0, len(data) - 1))
    if op == "flip":
        data[at] ^= draw(st.integers(1, 255))
    elif op == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=4))
    elif op == "delete":
        del data[at : at + draw(st.integers(1, 4))]
    elif op == "set":
        data[at] = draw(st.sampled_from([0x00, 0x80, 0xFF, 0x30, 0xA0, 0x04, 0x24, 0x7F]))
    else:
        del data[at:]
    return bytes(data)


def outcome(call, *args, **kwargs) -> VerifiedIdentity | IdentityRefused:
    """Run ``call``; any exception other than IdentityRefused fails the property."""
    try:
        return call(*args, **kwargs)
    except IdentityRefused as refusal:
        return refusal


def same_proof(result: VerifiedIdentity, original: VerifiedIdentity) -> bool:
    return (
        result.instance_key == original.instance_key
        and result.issued_at == original.issued_at
        and result.evidence["content_sha256"] == original.evidence["content_sha256"]
        and result.evidence["signer_cert_sha256"] == original.evidence["signer_cert_sha256"]
    )


def _ec2(identity: dict, sample) -> VerifiedIdentity | IdentityRefused:
    result = outcome(
        verify_ec2_identity, identity, trust=TRUST, now=sample.now, accepted_forms=FORMS
    )
    outcome(peek_ec2_instance_key, identity)
    return result


EC2_ORIGINALS = {
    name: verify_ec2_identity(
        EC2[name].identity, trust=TRUST, now=EC2[name].now, accepted_forms=FORMS
    )
    for name in ("tc-rsa2048", "tc-pkcs7", "tc-signature")
}


@PROPERTY
@given(st.data())
def test_ec2_pkcs7_mutations(data: st.DataObject) -> None:
    for sample, form in ((TC_RSA2048, "rsa2048"), (TC_DSA, "pkcs7")):
        der = base64.b64decode(sample.identity[form])
        changed = data.draw(mutated(der))
        result = _ec2({form: base64.b64encode(changed).decode()}, sample)
        if changed == der:
            assert isinstance(result, VerifiedIdentity)
        if isinstance(result, VerifiedIdentity):
            assert same_proof(result, EC2_ORIGINALS[sample.name])


@PROPERTY
@given(st.data())
def test_ec2_detached_document_mutations(data: st.DataObject) -> None:
    document = TC_DETACHED.identity["document"].encode()
    changed = data.draw(mutated(document))
    text = changed.decode("utf-8", errors="surrogateescape")
    identity = {"document": text, "signature": TC_DETACHED.identity["signature"]}
    result = _ec2(identity, TC_DETACHED)
    if changed == document:
        assert isinstance(result, VerifiedIdentity)
    else:
        assert isinstance(result, IdentityRefused)


@PROPERTY
@given(st.data())
def test_ec2_base64_text_mutations(data: st.DataObject) -> None:
    text = TC_RSA2048.identity["rsa2048"].encode()
    changed = data.draw(mutated(text)).decode("latin-1")
    result = _ec2({"rsa2048": changed}, TC_RSA2048)
    if isinstance(result, VerifiedIdentity):
        assert same_proof(result, EC2_ORIGINALS["tc-rsa2048"])


AZURE_ORIGINAL = verify_azure_attested(
    CODER.attested, nonce=CODER.nonce, roots=ROOTS, intermediates=INTERMEDIATES, now=CODER.now
)


@PROPERTY
@given(st.data())
def test_azure_mutations(data: st.DataObject) -> None:
    der = base64.b64decode(CODER.attested["signature"])
    changed = data.draw(mutated(der))
    attested = {"encoding": "pkcs7", "signature": base64.b64encode(changed).decode()}
    result = outcome(
        verify_azure_attested,
        attested,
        nonce=CODER.nonce,
        roots=ROOTS,
        intermediates=INTERMEDIATES,
        now=CODER.now,
        max_age=timedelta(minutes=10),
    )
    outcome(peek_azure_instance_key, attested, None)
    if changed == der:
        assert isinstance(result, VerifiedIdentity)
    if isinstance(result, VerifiedIdentity):
        assert same_proof(result, AZURE_ORIGINAL)


@PROPERTY
@given(data=st.data())
def test_azure_content_mutations_with_a_local_signer(
    data: st.DataObject, local_chain: LocalChain
) -> None:
    """Mutate the JSON before signing: the verifier parses whatever a trusted signer signed,
    so the content checks themselves must refuse cleanly too."""
    original = azure_document()
    content = data.draw(mutated(original))
    der = build_signed_data(
        content,
        key=local_chain.leaf_key,
        signer=local_chain.leaf,
        embed=[local_chain.leaf],
        signed_attrs=None,
    )
    result = outcome(
        verify_azure_attested,
        {"encoding": "pkcs7", "signature": b64(der)},
        nonce="challenge0001",
        roots=[local_chain.root],
        intermediates=[local_chain.intermediate],
        now=LOCAL_NOW,
    )
    if content == original:
        assert isinstance(result, VerifiedIdentity)

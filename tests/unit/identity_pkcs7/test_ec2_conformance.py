"""Real EC2 identity documents against the production trust shipped in clouds/ec2/trust."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from clouds.ec2.verify import (
    FORMS,
    PRODUCTION_TRUST_DIR,
    Ec2TrustStore,
    peek_ec2_instance_key,
    verify_ec2_identity,
)
from contracts.errors import ErrorType, IdentityRefused
from contracts.providers import Provider

from .conftest import AWS, Ec2Sample, ec2_samples, read

SAMPLES = ec2_samples()


def _form(sample: Ec2Sample) -> str:
    return next(f for f in ("rsa2048", "pkcs7", "signature") if f in sample.identity)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_production_sample_accepted(sample: Ec2Sample, production_ec2: Ec2TrustStore) -> None:
    form = _form(sample)
    result = verify_ec2_identity(
        sample.identity, trust=production_ec2, now=sample.now, accepted_forms=frozenset({form})
    )
    assert result.provider is Provider.AWS
    assert (result.cloud_account, result.instance_id, result.region) == (
        sample.account,
        sample.instance,
        sample.region,
    )
    assert result.evidence["form"] == form
    pinned = production_ec2.certificate(form, sample.region)
    assert pinned is not None
    assert result.evidence["signer_cert_sha256"] == pinned.fingerprint(hashes.SHA256()).hex()
    assert result.issued_at <= sample.now
    assert result.evidence["instance_type"].startswith("t")
    assert result.evidence["image_id"].startswith("ami-")
    assert peek_ec2_instance_key(sample.identity) == (sample.account, sample.instance)


def test_every_form_of_one_instance_yields_the_same_identity(
    production_ec2: Ec2TrustStore,
) -> None:
    tc = [s for s in SAMPLES if s.name.startswith("tc-")]
    results = [
        verify_ec2_identity(s.identity, trust=production_ec2, now=s.now, accepted_forms=FORMS)
        for s in tc
    ]
    assert len({(r.instance_key, r.region, r.issued_at) for r in results}) == 1
    document = (AWS / "tc-us-west-2-2018" / "document.json").read_bytes()
    assert {r.evidence["content_sha256"] for r in results} == {hashlib.sha256(document).hexdigest()}


def test_default_policy_is_rsa2048_only(production_ec2: Ec2TrustStore) -> None:
    for sample in SAMPLES:
        if _form(sample) == "rsa2048":
            verify_ec2_identity(sample.identity, trust=production_ec2, now=sample.now)
            continue
        with pytest.raises(IdentityRefused) as refused:
            verify_ec2_identity(sample.identity, trust=production_ec2, now=sample.now)
        assert refused.value.type is ErrorType.IDENTITY_ALGORITHM_REFUSED, sample.name


@pytest.mark.parametrize("wrong_region", ["us-east-1", "ap-southeast-2"])
def test_rsa2048_sample_refused_with_another_regions_certificate(
    production_ec2: Ec2TrustStore, wrong_region: str
) -> None:
    sample = SAMPLES[0]  # us-west-2
    other = production_ec2.certificate("rsa2048", wrong_region)
    assert other is not None
    swapped = Ec2TrustStore(certificates={"rsa2048": {"us-west-2": other}})
    with pytest.raises(IdentityRefused) as refused:
        verify_ec2_identity(sample.identity, trust=swapped, now=sample.now)
    assert refused.value.type is ErrorType.IDENTITY_SIGNATURE_INVALID


def test_conformance_certificates_match_the_production_pins(
    production_ec2: Ec2TrustStore,
) -> None:
    """The certificates the conformance notes name (spire, vault) are the ones shipped."""

    def cert(name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((AWS / "certs" / name).read_bytes())

    assert production_ec2.certificate("rsa2048", "us-west-2") == cert("spire-rsa2048-us-west-2.pem")
    assert production_ec2.certificate("pkcs7", "us-east-1") == cert("vault-aws-dsa-cert.pem")
    assert production_ec2.certificate("signature", "ap-southeast-2") == cert(
        "spire-rsa1024-ap-southeast-2.pem"
    )


def test_pending_time_in_the_future_is_not_yet_valid(production_ec2: Ec2TrustStore) -> None:
    sample = SAMPLES[0]
    with pytest.raises(IdentityRefused) as refused:
        verify_ec2_identity(
            sample.identity, trust=production_ec2, now=sample.now - timedelta(days=2)
        )
    assert refused.value.type is ErrorType.IDENTITY_NOT_YET_VALID


def test_max_age(production_ec2: Ec2TrustStore) -> None:
    sample = SAMPLES[0]  # pendingTime 2018-05-09T12:30:58Z, now 2018-05-10T00:00Z
    verify_ec2_identity(
        sample.identity, trust=production_ec2, now=sample.now, max_age=timedelta(hours=12)
    )
    with pytest.raises(IdentityRefused) as refused:
        verify_ec2_identity(
            sample.identity, trust=production_ec2, now=sample.now, max_age=timedelta(hours=11)
        )
    assert refused.value.type is ErrorType.IDENTITY_EXPIRED


def test_trust_store_layout(tmp_path: Path, production_ec2: Ec2TrustStore) -> None:
    for form in FORMS:
        assert len(production_ec2.regions(form)) == 36
    assert "us-gov-west-1" in production_ec2.regions("rsa2048")
    assert Ec2TrustStore.from_settings(None) is production_ec2
    # A directory with only one form, as a local emulator would write it.
    (tmp_path / "rsa2048").mkdir()
    (tmp_path / "rsa2048" / "us-west-2.pem").write_bytes(
        (PRODUCTION_TRUST_DIR / "rsa2048" / "us-west-2.pem").read_bytes()
    )
    local = Ec2TrustStore.from_settings(tmp_path)
    assert local.regions("rsa2048") == {"us-west-2"} and local.regions("pkcs7") == frozenset()
    verify_ec2_identity(SAMPLES[0].identity, trust=local, now=SAMPLES[0].now)


def test_trust_store_refuses_bad_configuration(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Ec2TrustStore.from_dir(tmp_path / "missing")
    (tmp_path / "rsa2048").mkdir()
    (tmp_path / "rsa2048" / "not a region.pem").write_text(
        read(AWS / "certs" / "spire-rsa2048-us-east-1.pem")
    )
    with pytest.raises(ValueError):
        Ec2TrustStore.from_dir(tmp_path)
    (tmp_path / "rsa2048" / "not a region.pem").unlink()
    # A DSA certificate where an RSA one belongs.
    (tmp_path / "rsa2048" / "us-east-1.pem").write_text(
        read(AWS / "certs" / "vault-aws-dsa-cert.pem")
    )
    with pytest.raises(ValueError):
        Ec2TrustStore.from_dir(tmp_path)

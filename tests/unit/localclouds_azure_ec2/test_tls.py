"""localclouds/tls.py: a persisted root -> intermediate -> leaf chain and PKCS#7 signing."""

from __future__ import annotations

import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import cms
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from localclouds import tls


def _chain(
    d: Path, now: datetime | None = None
) -> tuple[tls.CertifiedKey, tls.CertifiedKey, tls.CertifiedKey]:
    root = tls.ensure_root_ca(
        d / "root.pem", d / "private" / "root.key", common_name="T Root", now=now
    )
    inter = tls.ensure_intermediate_ca(
        d / "int.pem", d / "private" / "int.key", issuer=root, common_name="T Issuing", now=now
    )
    leaf = tls.ensure_leaf(
        d / "leaf.pem",
        d / "private" / "leaf.key",
        issuer=inter,
        subject=tls.name("metadata.azure.com"),
        dns_names=["eastus.metadata.azure.com", "metadata.azure.com"],
        extended_key_usages=[tls.SERVER_AUTH, tls.CLIENT_AUTH],
        now=now,
    )
    return root, inter, leaf


def test_chain_verifies_with_openssl_and_carries_sans_and_ekus(tmp_path: Path) -> None:
    root, inter, leaf = _chain(tmp_path)
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(root.cert_path),
            "-untrusted",
            str(inter.cert_path),
            str(leaf.cert_path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    sans = leaf.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "eastus.metadata.azure.com",
        "metadata.azure.com",
    ]
    ekus = list(leaf.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert ekus == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    basic = inter.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca and basic.path_length == 0


def test_keys_are_private_and_reused_on_reload(tmp_path: Path) -> None:
    first = _chain(tmp_path)
    for item in first:
        assert stat.S_IMODE(item.key_path.stat().st_mode) == 0o600
        assert item.key_path.parent.name == "private"
    second = _chain(tmp_path)
    assert [c.fingerprint for c in first] == [c.fingerprint for c in second]


def test_changed_sans_reissue_the_leaf_with_the_same_key(tmp_path: Path) -> None:
    root, inter, leaf = _chain(tmp_path)
    other = tls.ensure_leaf(
        tmp_path / "leaf.pem",
        tmp_path / "private" / "leaf.key",
        issuer=inter,
        subject=tls.name("metadata.azure.com"),
        dns_names=["westus.metadata.azure.com"],
    )
    assert other.fingerprint != leaf.fingerprint
    assert other.key_fingerprint == leaf.key_fingerprint


def test_a_new_root_reissues_what_it_no_longer_signs(tmp_path: Path) -> None:
    root, inter, _ = _chain(tmp_path)
    (tmp_path / "root.pem").unlink()
    (tmp_path / "private" / "root.key").unlink()
    root2, inter2, _ = _chain(tmp_path)
    assert root2.key_fingerprint != root.key_fingerprint
    assert inter2.fingerprint != inter.fingerprint
    inter2.certificate.verify_directly_issued_by(root2.certificate)


def test_certificates_near_expiry_are_renewed(tmp_path: Path) -> None:
    old = datetime.now(UTC) - timedelta(days=3000)
    root, _, leaf = _chain(tmp_path, now=old)
    root2, _, leaf2 = _chain(tmp_path)
    assert root2.fingerprint == root.fingerprint  # still valid for years
    assert leaf2.fingerprint != leaf.fingerprint  # a 1-year leaf from 3000 days ago expired


def _openssl_verify(der: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(der), *args], capture_output=True
    )


def test_pkcs7_der_with_embedded_signer_verifies_against_the_chain(tmp_path: Path) -> None:
    root, inter, leaf = _chain(tmp_path)
    content = b'{"vmId":"x"}'
    der = tmp_path / "sig.der"
    der.write_bytes(tls.sign_pkcs7(content, leaf, certificates=[leaf.certificate]))
    bundle = tmp_path / "bundle.pem"
    tls.write_pem_bundle(bundle, [root.certificate, inter.certificate])
    ok = _openssl_verify(der, "-CAfile", str(bundle), "-purpose", "any")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == content
    no_chain = _openssl_verify(der, "-CAfile", str(root.cert_path), "-purpose", "any")
    assert no_chain.returncode != 0  # the intermediate is not embedded, as in Azure
    parsed = cms.ContentInfo.load(der.read_bytes())["content"]
    assert len(parsed["certificates"]) == 1
    attrs = {a["type"].native for a in parsed["signer_infos"][0]["signed_attrs"]}
    assert attrs == {"content_type", "signing_time", "message_digest"}


def test_pkcs7_ber_forms_verify_and_tampering_fails(tmp_path: Path) -> None:
    rsa_cert = tls.ensure_certificate(
        tmp_path / "rsa.pem",
        tmp_path / "k" / "rsa.key",
        subject=tls.name("r"),
        issuer=None,
        new_key=tls.rsa_key(2048),
        is_ca=False,
        validity=timedelta(days=30),
    )
    dsa_cert = tls.ensure_certificate(
        tmp_path / "dsa.pem",
        tmp_path / "k" / "dsa.key",
        subject=tls.name("d"),
        issuer=None,
        new_key=tls.dsa_key(1024),
        is_ca=False,
        validity=timedelta(days=30),
    )
    content = b'{\n  "x" : "y"\n}'
    for signer, digest in ((rsa_cert, "sha256"), (dsa_cert, "sha1")):
        blob = tls.sign_pkcs7(
            content,
            signer,
            digest=digest,
            ber_indefinite=True,
            algorithm_protection=digest == "sha256",
        )
        assert blob[:2] == b"\x30\x80"  # indefinite length, as EC2 writes it
        path = tmp_path / f"{digest}.ber"
        path.write_bytes(blob)
        ok = _openssl_verify(path, "-certfile", str(signer.cert_path), "-noverify")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout == content
        path.write_bytes(blob.replace(b'"y"', b'"z"'))
        assert (
            _openssl_verify(path, "-certfile", str(signer.cert_path), "-noverify").returncode != 0
        )

"""Test-only builders: locally generated keys, certificate chains and PKCS#7 SignedData.

Every knob an attacker controls is a parameter here (which certificates are embedded and in
which order, which certificate the SignerInfo names, which key signs, the signed attributes,
the digest written in messageDigest, the number of SignerInfos), so the adversarial tests can
build exactly the object they want to see refused.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import algos, cms
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
EMAIL_PROTECTION = ExtendedKeyUsageOID.EMAIL_PROTECTION
_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384}


@functools.cache
def rsa_key(label: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """One generated key per label for the whole test session (key generation is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def name(common_name: str, **extra: str) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    for oid_name, value in extra.items():
        attrs.insert(0, x509.NameAttribute(getattr(NameOID, oid_name), value))
    return x509.Name(attrs)


def make_certificate(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    *,
    issuer: x509.Name | None = None,
    issuer_key: rsa.RSAPrivateKey | None = None,
    ca: bool = False,
    sans: Sequence[str] = (),
    ekus: Sequence[x509.ObjectIdentifier] | None = None,
    not_before: datetime,
    not_after: datetime,
    serial: int | None = None,
) -> x509.Certificate:
    """A certificate shaped like WebPKI ones (BC, KU, SKI, AKI); self-signed by default."""
    issuer = issuer or subject
    issuer_key = issuer_key or key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=not ca,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    )
    if ekus is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class LocalChain:
    """A local root -> intermediate -> leaf chain, as a local Azure IMDS would have."""

    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: rsa.RSAPrivateKey


def make_chain(
    now: datetime,
    *,
    sans: Sequence[str] = ("eastus.metadata.azure.com", "metadata.azure.com"),
    ekus: Sequence[x509.ObjectIdentifier] | None = (SERVER_AUTH, CLIENT_AUTH),
    label: str = "azure",
) -> LocalChain:
    start, end = now - timedelta(days=30), now + timedelta(days=365)
    root_key, inter_key = rsa_key(f"{label}-root"), rsa_key(f"{label}-intermediate")
    leaf_key = rsa_key(f"{label}-leaf")
    root_name = name(f"{label} test root", ORGANIZATION_NAME="fleetpatch tests")
    inter_name = name(f"{label} test issuing CA", ORGANIZATION_NAME="fleetpatch tests")
    root = make_certificate(root_name, root_key, ca=True, not_before=start, not_after=end)
    intermediate = make_certificate(
        inter_name,
        inter_key,
        issuer=root_name,
        issuer_key=root_key,
        ca=True,
        ekus=(SERVER_AUTH, CLIENT_AUTH),
        not_before=start,
        not_after=end,
    )
    leaf = make_certificate(
        name("metadata.azure.com"),
        leaf_key,
        issuer=inter_name,
        issuer_key=inter_key,
        sans=sans,
        ekus=ekus,
        not_before=start,
        not_after=end,
    )
    return LocalChain(root, intermediate, leaf, leaf_key)


def _asn1_cert(cert: x509.Certificate) -> ax509.Certificate:
    return ax509.Certificate.load(cert.public_bytes(Encoding.DER))


DEFAULT_ATTRS = "default"


def build_signed_data(
    content: bytes,
    *,
    key: rsa.RSAPrivateKey,
    signer: x509.Certificate,
    embed: Sequence[x509.Certificate] = (),
    digest: str = "sha256",
    digest_oid: str | None = None,
    signature_oid: str = "rsassa_pkcs1v15",
    signed_attrs: str | None | list[cms.CMSAttribute] = DEFAULT_ATTRS,
    message_digest: bytes | None = None,
    extra_signer_infos: int = 0,
    content_type: str = "data",
) -> bytes:
    """A DER ContentInfo(SignedData) over ``content`` signed by ``key``, naming ``signer``
    (issuer + serial) in its SignerInfo, embedding ``embed`` in that order.

    ``signed_attrs``: DEFAULT_ATTRS (contentType + messageDigest), None (signature over the
    content, as Azure IMDS does) or an explicit attribute list. ``message_digest`` overrides
    the digest written into the default attributes.
    """
    digest_alg = algos.DigestAlgorithm({"algorithm": digest_oid or digest})
    ref = _asn1_cert(signer)
    sid = cms.SignerIdentifier(
        {
            "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                {"issuer": ref.issuer, "serial_number": ref.serial_number}
            )
        }
    )
    if signed_attrs == DEFAULT_ATTRS:
        value = message_digest or hashlib.new(digest, content).digest()
        signed_attrs = [
            cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            cms.CMSAttribute({"type": "message_digest", "values": [value]}),
        ]
    info = {
        "version": "v1",
        "sid": sid,
        "digest_algorithm": digest_alg,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": signature_oid}),
        "signature": b"",
    }
    if signed_attrs is not None:
        info["signed_attrs"] = cms.CMSAttributes(signed_attrs)
    signer_info = cms.SignerInfo(info)
    to_sign = (
        b"\x31" + signer_info["signed_attrs"].dump()[1:] if signed_attrs is not None else content
    )
    signer_info["signature"] = key.sign(to_sign, padding.PKCS1v15(), _HASHES[digest]())
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [digest_alg],
            "encap_content_info": {"content_type": content_type, "content": content},
            "signer_infos": [signer_info] * (1 + extra_signer_infos),
        }
    )
    if embed:
        signed["certificates"] = [_asn1_cert(cert) for cert in embed]
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def strip_signed_attributes(der: bytes) -> bytes:
    """The same SignedData with its signed attributes removed (the signature left as is)."""
    info = cms.ContentInfo.load(der)
    signer = info["content"]["signer_infos"][0]
    rebuilt = cms.SignerInfo(
        {
            "version": signer["version"],
            "sid": signer["sid"],
            "digest_algorithm": signer["digest_algorithm"],
            "signature_algorithm": signer["signature_algorithm"],
            "signature": signer["signature"],
        }
    )
    info["content"]["signer_infos"] = [rebuilt]
    return info.dump(force=True)


def outer_indefinite(der: bytes) -> bytes:
    """Re-encode the outermost definite-length TLV with an indefinite length (BER)."""
    first = der[1]
    header = 2 + (first & 0x7F if first & 0x80 else 0)
    return bytes([der[0], 0x80]) + der[header:] + b"\x00\x00"


def pem_body(pem_text: str) -> str:
    """The base64 body of a PEM file (what IMDS itself returns)."""
    return "\n".join(line for line in pem_text.splitlines() if not line.startswith("-----"))

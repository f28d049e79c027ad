"""A small local certificate toolkit for the local clouds: root -> intermediate -> leaf, persisted.

The local clouds stand in for real clouds whose identity documents are signed by certificates
that chain to a public root (Azure IMDS) or are self-signed per region (EC2). Locally those
anchors are generated once under the state directory and reused on every restart, so a worker
configured with their paths keeps trusting them. Keys are written 0600 and never logged.

``sign_pkcs7`` builds a PKCS#7 / CMS SignedData with the content embedded, the shape both
Azure IMDS and EC2 IMDS return; asn1crypto does the encoding (so DSA works too, which
cryptography's own PKCS#7 builder does not support) and cryptography does the signing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | dsa.DSAPrivateKey
KeyFactory = Callable[[], PrivateKey]

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
LOCAL_ORGANIZATION = "fleetpatch local cloud"
#: Certificates are re-issued when they would expire within this margin.
RENEW_MARGIN = timedelta(days=7)
#: Backdating absorbs small clock differences between the emulator and a verifier.
BACKDATE = timedelta(hours=1)


def rsa_key(bits: int = 2048) -> KeyFactory:
    """A factory for fresh RSA keys of ``bits`` bits."""
    return lambda: rsa.generate_private_key(public_exponent=65537, key_size=bits)


def dsa_key(bits: int = 1024) -> KeyFactory:
    """A factory for fresh DSA keys (EC2's legacy ``pkcs7`` form is DSA-1024 with SHA-1)."""
    return lambda: dsa.generate_private_key(key_size=bits)


def name(common_name: str, organization: str = LOCAL_ORGANIZATION, **extra: str) -> x509.Name:
    """An X.509 name: C=US, O=..., optional OU / ST / L, CN."""
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "US")]
    for key, oid in (
        ("state", NameOID.STATE_OR_PROVINCE_NAME),
        ("locality", NameOID.LOCALITY_NAME),
    ):
        if key in extra:
            attrs.append(x509.NameAttribute(oid, extra[key]))
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if "unit" in extra:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, extra["unit"]))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


@dataclass(frozen=True)
class CertifiedKey:
    """A certificate, its private key and where both are persisted."""

    certificate: x509.Certificate
    private_key: PrivateKey
    cert_path: Path
    key_path: Path

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate's DER, lower-case hex."""
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    @property
    def key_fingerprint(self) -> str:
        """SHA-256 of the public key's DER (stable across re-issued certificates)."""
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).hexdigest()

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


# --- persistence ---------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file and rename, so a reader never sees half a PEM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_private_key(path: Path, key: PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_atomic(path, pem, 0o600)


def write_pem_bundle(path: Path, certificates: Sequence[x509.Certificate]) -> None:
    """Write certificates as one PEM file (a CA bundle)."""
    data = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)
    _write_atomic(path, data, 0o644)


def load_private_key(path: Path) -> PrivateKey | None:
    """The key stored at ``path``, or None when there is none (or it is unreadable)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    return key if isinstance(key, rsa.RSAPrivateKey | dsa.DSAPrivateKey) else None


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _same_public_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def _sans(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in ext.get_values_for_type(x509.DNSName)} | {
        str(v) for v in ext.get_values_for_type(x509.IPAddress)
    }


def ensure_certificate(
    cert_path: Path,
    key_path: Path,
    *,
    subject: x509.Name,
    issuer: CertifiedKey | None,
    new_key: KeyFactory,
    is_ca: bool,
    validity: timedelta,
    path_length: int | None = None,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    extended_key_usages: Sequence[x509.ObjectIdentifier] = (),
    now: datetime | None = None,
) -> CertifiedKey:
    """Load the certificate at ``cert_path`` if it still fits the request, else (re)issue it.

    It fits when its key is the stored key, its subject and SANs are the requested ones, it was
    issued by ``issuer`` (or is self-signed when ``issuer`` is None) and it is not about to
    expire. The stored key is kept across re-issues, so key fingerprints survive.
    """
    now = now or datetime.now(UTC)
    key = load_private_key(key_path)
    if key is None:
        key = new_key()
        write_private_key(key_path, key)
    cert = _load_cert(cert_path)
    wanted_sans = set(dns_names) | {str(ipaddress.ip_address(ip)) for ip in ip_addresses}
    if cert is not None and _fits(cert, key, subject, issuer, wanted_sans, now):
        return CertifiedKey(cert, key, cert_path, key_path)
    signer_key = issuer.private_key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_length), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_key_usage(is_ca, key), critical=True)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.private_key.public_key()),
            critical=False,
        )
    if wanted_sans:
        general: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        general += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    if extended_key_usages:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(extended_key_usages)), critical=False
        )
    cert = builder.sign(signer_key, hashes.SHA256())
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return CertifiedKey(cert, key, cert_path, key_path)


def _key_usage(is_ca: bool, key: PrivateKey) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not is_ca and isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=is_ca,
        crl_sign=is_ca,
        encipher_only=False,
        decipher_only=False,
    )


def _fits(
    cert: x509.Certificate,
    key: PrivateKey,
    subject: x509.Name,
    issuer: CertifiedKey | None,
    sans: set[str],
    now: datetime,
) -> bool:
    if not _same_public_key(cert, key) or cert.subject != subject or _sans(cert) != sans:
        return False
    if cert.not_valid_after_utc - RENEW_MARGIN < now or cert.not_valid_before_utc > now:
        return False
    parent = issuer.certificate if issuer else cert
    try:
        cert.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def ensure_root_ca(
    cert_path: Path, key_path: Path, *, common_name: str, now: datetime | None = None
) -> CertifiedKey:
    """A self-signed root CA (RSA-2048, 10 years)."""
    return ensure_certificate(
        cert_path,
        key_path,
        subject=name(common_name),
        issuer=None,
        new_key=rsa_key(),
        is_ca=True,
        validity=timedelta(days=3650),
        now=now,
    )


def ensure_intermediate_ca(
    cert_path: Path,
    key_path: Path,
    *,
    issuer: CertifiedKey,
    common_name: str,
    now: datetime | None = None,
) -> CertifiedKey:
    """An issuing CA below ``issuer`` (path length 0, 5 years)."""
    return ensure_certificate(
        cert_path,
        key_path,
        subject=name(common_name),
        issuer=issuer,
        new_key=rsa_key(),
        is_ca=True,
        path_length=0,
        validity=timedelta(days=1825),
        now=now,
    )


def ensure_leaf(
    cert_path: Path,
    key_path: Path,
    *,
    issuer: CertifiedKey,
    subject: x509.Name,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    extended_key_usages: Sequence[x509.ObjectIdentifier] = (SERVER_AUTH,),
    validity: timedelta = timedelta(days=365),
    now: datetime | None = None,
) -> CertifiedKey:
    """An end-entity certificate (RSA-2048) issued by ``issuer``."""
    return ensure_certificate(
        cert_path,
        key_path,
        subject=subject,
        issuer=issuer,
        new_key=rsa_key(),
        is_ca=False,
        validity=validity,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        extended_key_usages=extended_key_usages,
        now=now,
    )


# --- PKCS#7 / CMS SignedData -----------------------------------------------------------------

Digest = Literal["sha1", "sha256"]
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
}


def sign_pkcs7(
    content: bytes,
    signer: CertifiedKey,
    *,
    digest: Digest = "sha256",
    certificates: Sequence[x509.Certificate] = (),
    signing_time: datetime | None = None,
    algorithm_protection: bool = False,
    ber_indefinite: bool = False,
) -> bytes:
    """A SignedData (one signer, signed attributes, content embedded) as DER or BER bytes.

    Signed attributes are contentType, signingTime, (cmsAlgorithmProtection,) messageDigest.
    ``ber_indefinite`` reproduces EC2's encoding: indefinite lengths down to a constructed
    OCTET STRING around the content, the way AWS's signer streams it.
    """
    hash_cls = _HASHES[digest]
    key = signer.private_key
    sig_algo = _signature_algorithm(key, digest)
    digest_algo = algos.DigestAlgorithm({"algorithm": digest})  # NULL parameters, as EC2 in 2018
    h = hashes.Hash(hash_cls())
    h.update(content)
    attrs = [
        {"type": "content_type", "values": ["data"]},
        {
            "type": "signing_time",
            "values": [cms.Time({"utc_time": signing_time or datetime.now(UTC)})],
        },
    ]
    if algorithm_protection:
        attrs.append(
            {
                "type": "cms_algorithm_protection",
                "values": [
                    cms.CMSAlgorithmProtection(
                        {"digest_algorithm": digest_algo, "signature_algorithm": sig_algo}
                    )
                ],
            }
        )
    attrs.append({"type": "message_digest", "values": [h.finalize()]})
    signed_attrs = cms.CMSAttributes(attrs)
    to_sign = signed_attrs.dump(force=True)  # DER SET OF, the bytes the signature covers
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_sign, padding.PKCS1v15(), hash_cls())
    else:
        signature = key.sign(to_sign, hash_cls())
    cert = asn1_x509.Certificate.load(signer.certificate.public_bytes(serialization.Encoding.DER))
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": cert.issuer, "serial_number": cert.serial_number}
                    )
                }
            ),
            "digest_algorithm": digest_algo,
            "signed_attrs": signed_attrs,
            "signature_algorithm": sig_algo,
            "signature": signature,
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [digest_algo],
            "encap_content_info": {"content_type": "data", "content": content},
            "certificates": [
                asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
                for c in certificates
            ]
            or None,
            "signer_infos": [signer_info],
        }
    )
    if ber_indefinite:
        return _ber_content_info(content, signed_data)
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def _signature_algorithm(key: PrivateKey, digest: Digest) -> algos.SignedDigestAlgorithm:
    if isinstance(key, rsa.RSAPrivateKey):
        return algos.SignedDigestAlgorithm(
            {"algorithm": f"{digest}_rsa", "parameters": core.Null()}
        )
    return algos.SignedDigestAlgorithm({"algorithm": f"{digest}_dsa"})


_EOC = b"\x00\x00"
_OID_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.1").dump()
_OID_SIGNED_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()


def _ber_content_info(content: bytes, signed_data: cms.SignedData) -> bytes:
    """ContentInfo/SignedData with indefinite lengths, as EC2 IMDS encodes it.

    The definite-length fields (version, digest algorithms, certificates, signer infos) are
    taken from the DER structure; only the envelopes and the content are re-wrapped.
    """
    encap = (
        b"\x30\x80"
        + _OID_DATA
        + b"\xa0\x80"
        + b"\x24\x80"
        + core.OctetString(content).dump()
        + _EOC
        + _EOC
        + _EOC
    )
    certs = signed_data["certificates"]
    body = (
        signed_data["version"].dump()
        + signed_data["digest_algorithms"].dump()
        + encap
        + (certs.dump() if certs.native is not None else b"")
        + signed_data["signer_infos"].dump()
    )
    return b"\x30\x80" + _OID_SIGNED_DATA + b"\xa0\x80" + b"\x30\x80" + body + _EOC + _EOC + _EOC

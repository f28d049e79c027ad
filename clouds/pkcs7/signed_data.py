"""Parsing a PKCS#7 / CMS SignedData into :class:`SignedData`, every field structurally checked."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import cms, core

from clouds.pkcs7.encoding import check_encoding
from clouds.pkcs7.errors import malformed as _malformed
from contracts.errors import ErrorType, IdentityRefused

#: Most embedded certificates accepted in one SignedData.
MAX_CERTIFICATES = 10

OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_DATA = "1.2.840.113549.1.7.1"
_ATTR_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_ATTR_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_ATTR_SIGNING_TIME = "1.2.840.113549.1.9.5"
_ATTR_ALGORITHM_PROTECTION = "1.2.840.113549.1.9.52"

_DIGESTS: dict[str, str] = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    # Azure IMDS quirk: a signature algorithm OID in the digestAlgorithm field.
    "1.2.840.113549.1.1.11": "sha256",
    "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512",
}
# signature algorithm OID -> (key family, hash it implies or None)
_SIGNATURES: dict[str, tuple[str, str | None]] = {
    "1.2.840.113549.1.1.1": ("rsa", None),  # rsaEncryption
    "1.2.840.113549.1.1.11": ("rsa", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa", "sha512"),
    "1.2.840.10040.4.1": ("dsa", None),  # id-dsa
    "1.2.840.10040.4.3": ("dsa", "sha1"),  # dsaWithSHA1 (AWS /pkcs7)
    "2.16.840.1.101.3.4.3.2": ("dsa", "sha256"),
}
STRONG_DIGESTS = frozenset({"sha256", "sha384", "sha512"})


@dataclass(frozen=True)
class EmbeddedCertificate:
    """A certificate carried in the SignedData: untrusted bytes plus the fields to match a
    SignerInfo's issuer and serial number."""

    der: bytes
    issuer_der: bytes
    serial: int


@dataclass(frozen=True)
class SignedData:
    """A structurally checked SignedData. Nothing here is authenticated until
    :func:`verify_signature` succeeds with a key the caller trusts."""

    content: bytes
    digest: str  # sha1 | sha256 | sha384 | sha512
    signature_family: str  # rsa | dsa
    signature: bytes
    signed_bytes: bytes  # what the signature covers: DER SET OF attributes, or the content
    has_signed_attributes: bool
    signing_time: datetime | None
    signer_issuer_der: bytes
    signer_serial: int
    certificates: tuple[EmbeddedCertificate, ...]

    @property
    def content_sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def parse_signed_data(
    der: bytes,
    *,
    allow_indefinite: bool,
    allowed_digests: frozenset[str],
    require_signed_attributes: bool,
) -> SignedData:
    """Check encoding and structure of a PKCS#7 SignedData and return its parts."""
    check_encoding(der, allow_indefinite=allow_indefinite)
    try:
        return _parse(der, allowed_digests, require_signed_attributes)
    except IdentityRefused:
        raise
    except Exception as exc:  # asn1crypto parses lazily and raises many types on bad input
        raise _malformed(f"PKCS#7 structure is invalid ({type(exc).__name__})") from None


def _parse(der: bytes, allowed_digests: frozenset[str], require_attrs: bool) -> SignedData:
    info = cms.ContentInfo.load(der, strict=True)
    if info["content_type"].dotted != OID_SIGNED_DATA:
        raise _malformed("not a PKCS#7 SignedData")
    sd = info["content"]
    if sd["version"].native != "v1":
        raise _malformed("SignedData version must be 1")
    encap = sd["encap_content_info"]
    if encap["content_type"].dotted != OID_DATA:
        raise _malformed("encapsulated content type must be data")
    econtent = encap["content"]
    if isinstance(econtent, core.Void) or econtent.native is None:
        raise _malformed("detached content is not accepted")
    content = bytes(econtent.native)
    signers = sd["signer_infos"]
    if len(signers) != 1:
        raise _malformed(f"expected exactly one SignerInfo, found {len(signers)}")
    si = signers[0]
    if si["version"].native != "v1" or si["sid"].name != "issuer_and_serial_number":
        raise _malformed("SignerInfo must be version 1 with issuer and serial number")
    digest = _digest_name(si["digest_algorithm"], allowed_digests)
    listed = {alg["algorithm"].dotted for alg in sd["digest_algorithms"]}
    if si["digest_algorithm"]["algorithm"].dotted not in listed:
        raise _malformed("SignerInfo digest algorithm is not listed in digestAlgorithms")
    family = _signature_family(si["signature_algorithm"], digest)
    signed_bytes, signing_time = _signed_attributes(si, content, digest, require_attrs)
    sid = si["sid"].chosen
    return SignedData(
        content=content,
        digest=digest,
        signature_family=family,
        signature=bytes(si["signature"].native),
        signed_bytes=signed_bytes if signed_bytes is not None else content,
        has_signed_attributes=signed_bytes is not None,
        signing_time=signing_time,
        signer_issuer_der=sid["issuer"].dump(),
        signer_serial=int(sid["serial_number"].native),
        certificates=_certificates(sd["certificates"]),
    )


def _no_parameters(alg: Any) -> bool:
    params = alg["parameters"]
    return isinstance(params, (core.Void, core.Null)) or params.native is None


def _digest_name(alg: Any, allowed: frozenset[str]) -> str:
    oid = alg["algorithm"].dotted
    name = _DIGESTS.get(oid)
    if name is None or not _no_parameters(alg):
        raise IdentityRefused(ErrorType.IDENTITY_ALGORITHM_REFUSED, f"digest {oid} not supported")
    if name not in allowed:
        raise IdentityRefused(ErrorType.IDENTITY_ALGORITHM_REFUSED, f"digest {name} not accepted")
    return name


def _signature_family(alg: Any, digest: str) -> str:
    oid = alg["algorithm"].dotted
    known = _SIGNATURES.get(oid)
    if known is None or not _no_parameters(alg):
        raise IdentityRefused(
            ErrorType.IDENTITY_ALGORITHM_REFUSED, f"signature algorithm {oid} not supported"
        )
    family, implied = known
    if implied is not None and implied != digest:
        raise IdentityRefused(
            ErrorType.IDENTITY_ALGORITHM_REFUSED, "signature and digest algorithms disagree"
        )
    return family


def _signed_attributes(
    si: Any, content: bytes, digest: str, required: bool
) -> tuple[bytes | None, datetime | None]:
    attrs = si["signed_attrs"]
    if isinstance(attrs, core.Void):
        if required:
            raise _malformed("signed attributes are required")
        return None, None
    encoded = attrs.dump()
    # The signature covers the DER SET OF, i.e. the same bytes with the universal SET tag.
    signed = b"\x31" + encoded[1:]
    check_encoding(signed, allow_indefinite=False)
    seen: dict[str, Any] = {}
    for attr in attrs:
        oid = attr["type"].dotted
        values = attr["values"]
        if len(values) == 0:
            raise _malformed("signed attribute without a value")
        if oid in (
            _ATTR_CONTENT_TYPE,
            _ATTR_MESSAGE_DIGEST,
            _ATTR_SIGNING_TIME,
            _ATTR_ALGORITHM_PROTECTION,
        ):
            if oid in seen or len(values) != 1:
                raise _malformed(f"signed attribute {oid} must occur once with one value")
            seen[oid] = values[0]
    content_type = seen.get(_ATTR_CONTENT_TYPE)
    if content_type is None or content_type.dotted != OID_DATA:
        raise _malformed("signed contentType attribute missing or not data")
    message_digest = seen.get(_ATTR_MESSAGE_DIGEST)
    if message_digest is None:
        raise _malformed("signed messageDigest attribute missing")
    expected = hashlib.new(digest, content).digest()
    if not hmac.compare_digest(bytes(message_digest.native), expected):
        raise IdentityRefused(
            ErrorType.IDENTITY_SIGNATURE_INVALID, "messageDigest does not match the content"
        )
    protection = seen.get(_ATTR_ALGORITHM_PROTECTION)
    if protection is not None:
        sig_alg = protection["signature_algorithm"]
        if (
            protection["digest_algorithm"]["algorithm"].dotted
            != si["digest_algorithm"]["algorithm"].dotted
            or isinstance(sig_alg, core.Void)
            or sig_alg["algorithm"].dotted != si["signature_algorithm"]["algorithm"].dotted
            or not isinstance(protection["mac_algorithm"], core.Void)
        ):
            raise IdentityRefused(
                ErrorType.IDENTITY_ALGORITHM_REFUSED, "CMSAlgorithmProtection disagrees"
            )
    signing_time = seen.get(_ATTR_SIGNING_TIME)
    return signed, signing_time.native if signing_time is not None else None


def _certificates(cert_set: Any) -> tuple[EmbeddedCertificate, ...]:
    if isinstance(cert_set, core.Void):
        return ()
    if len(cert_set) > MAX_CERTIFICATES:
        raise _malformed("too many embedded certificates")
    found = []
    for choice in cert_set:
        if choice.name != "certificate":
            raise _malformed("only X.509 certificates may be embedded")
        cert = choice.chosen
        tbs = cert["tbs_certificate"]
        found.append(
            EmbeddedCertificate(
                der=cert.dump(),
                issuer_der=tbs["issuer"].dump(),
                serial=int(tbs["serial_number"].native),
            )
        )
    return tuple(found)

"""Strict PKCS#7 / CMS SignedData handling shared by the EC2 and Azure verifiers.

Both clouds sign their instance identity as a PKCS#7 SignedData (RFC 2315 / RFC 5652) that
carries the JSON document as encapsulated ``data`` content. This module turns untrusted bytes
into a :class:`SignedData` whose every field has passed a structural check, and verifies its
signature with a key the caller chose. It never decides which key is trusted: the EC2 verifier
pins a per-region certificate, the Azure verifier validates the embedded signer's chain.

What is accepted (everything else raises ``IdentityRefused``):

- Encoding: DER. ``allow_indefinite=True`` additionally accepts the BER that EC2's IMDS really
  emits (indefinite lengths on constructed values, the content split in a constructed OCTET
  STRING); lengths must still be minimal, EOC markers exact, no trailing bytes, nesting bounded.
  Signed attributes are always strict DER, since the signature covers their DER encoding.
- Structure: ContentInfo(signedData), SignedData version 1, encapsulated content type ``data``
  with the content present (not detached), exactly one SignerInfo, version 1, identified by
  issuer and serial number, its digest algorithm listed in ``digestAlgorithms``.
- Algorithms: digests from ``allowed_digests`` (SHA-1 only when a caller allows it, for AWS's
  legacy DSA form); signatures RSA PKCS#1 v1.5 or DSA. Azure IMDS writes
  ``sha256WithRSAEncryption`` where a digest OID belongs; that quirk is read as SHA-256.
- Signed attributes, when present: contentType (= data), messageDigest (= digest of the
  content, compared in constant time), optionally signingTime and CMSAlgorithmProtection (which
  must name the same algorithms as the SignerInfo); each of these at most once, single-valued.
  Without signed attributes the signature covers the content itself (what Azure IMDS sends);
  ``require_signed_attributes=True`` refuses that form (what EC2 never sends).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import cms, core
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa

from contracts import strict_json
from contracts.errors import ErrorType, IdentityRefused

#: Largest DER document accepted (real ones are 1-3 KiB).
MAX_DER_BYTES = 64 * 1024
#: Deepest ASN.1 nesting accepted (certificates need about 10).
MAX_DEPTH = 32
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
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
STRONG_DIGESTS = frozenset({"sha256", "sha384", "sha512"})


_WHITESPACE = {ord(c): None for c in " \t\r\n"}


def _malformed(reason: str) -> IdentityRefused:
    return IdentityRefused(ErrorType.IDENTITY_MALFORMED, reason)


# --- transport helpers -----------------------------------------------------------------------


def decode_base64(text: object, *, what: str, max_bytes: int = MAX_DER_BYTES) -> bytes:
    """Decode canonical standard base64; line breaks and spaces between characters are allowed
    (IMDS wraps its output). Anything that would not re-encode to the same text is refused, so
    one document has one spelling."""
    if not isinstance(text, str):
        raise _malformed(f"{what} must be a base64 string")
    max_chars = (max_bytes + 2) // 3 * 4
    if len(text) > 2 * max_chars:
        raise IdentityRefused(ErrorType.IDENTITY_TOO_LARGE, f"{what} is too large")
    compact = text.translate(_WHITESPACE)
    if len(compact) > max_chars:
        raise IdentityRefused(ErrorType.IDENTITY_TOO_LARGE, f"{what} is too large")
    if not compact.isascii():
        raise _malformed(f"{what} is not base64")
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(f"{what} is not base64") from None
    if not raw or base64.b64encode(raw).decode("ascii") != compact:
        raise _malformed(f"{what} is not canonical base64")
    if len(raw) > max_bytes:
        raise IdentityRefused(ErrorType.IDENTITY_TOO_LARGE, f"{what} is too large")
    return raw


def load_json_object(data: bytes) -> dict[str, Any]:
    """Parse signed content as one strict JSON object (see contracts.strict_json)."""
    try:
        return strict_json.loads_object(data)
    except strict_json.DuplicateKey as err:
        raise _malformed(f"{err} in signed content") from None
    except strict_json.StrictJsonError as err:
        raise _malformed(f"signed content is {err}") from None


# --- encoding check --------------------------------------------------------------------------


def check_encoding(data: bytes, *, allow_indefinite: bool) -> None:
    """Walk every TLV of ``data`` and refuse anything but minimal DER (or, with
    ``allow_indefinite``, the BER forms AWS emits). asn1crypto alone is lenient about these, and
    a lenient parser lets one signed object have many spellings."""
    if len(data) > MAX_DER_BYTES:
        raise IdentityRefused(ErrorType.IDENTITY_TOO_LARGE, "document is too large")
    end = _scan(data, 0, len(data), 0, allow_indefinite, parent_tag=None)
    if end != len(data):
        raise _malformed("trailing bytes after the ASN.1 value")


def _scan(data: bytes, pos: int, limit: int, depth: int, ber: bool, parent_tag: int | None) -> int:
    """Check one TLV starting at ``pos``; return the position after it."""
    if depth > MAX_DEPTH:
        raise _malformed("ASN.1 nesting too deep")
    if pos + 2 > limit:
        raise _malformed("truncated ASN.1 value")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise _malformed("high-tag-number form is not used by CMS")
    if tag == 0x00:
        raise _malformed("unexpected end-of-contents marker")
    constructed = bool(tag & 0x20)
    first = data[pos + 1]
    pos += 2
    length: int | None
    if first < 0x80:
        length = first
    elif first == 0x80:
        if not (ber and constructed):
            raise _malformed("indefinite length is not DER")
        length = None
    else:
        count = first & 0x7F
        if count > 4 or first == 0xFF:
            raise _malformed("ASN.1 length too large")
        if pos + count > limit:
            raise _malformed("truncated ASN.1 length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if data[pos] == 0 or length < 0x80:
            raise _malformed("non-minimal ASN.1 length")
        pos += count
    _check_tag(tag, constructed, ber, parent_tag)
    if length is None:
        while True:
            if pos + 2 <= limit and data[pos] == 0:
                if data[pos + 1] != 0:
                    raise _malformed("malformed end-of-contents marker")
                return pos + 2
            if pos >= limit:
                raise _malformed("truncated ASN.1 value (missing end-of-contents)")
            pos = _scan(data, pos, limit, depth + 1, ber, tag)
    end = pos + length
    if end > limit:
        raise _malformed("truncated ASN.1 value")
    if constructed:
        while pos < end:
            pos = _scan(data, pos, end, depth + 1, ber, tag)
    else:
        _check_primitive(tag, data[pos:end])
    return end


def _check_tag(tag: int, constructed: bool, ber: bool, parent_tag: int | None) -> None:
    if parent_tag == 0x24 and tag not in (0x04, 0x24):
        raise _malformed("constructed OCTET STRING holds a non-OCTET STRING")
    if tag & 0xC0:  # context, application, private: either form is possible
        return
    number = tag & 0x1F
    if number in (16, 17):
        if not constructed:
            raise _malformed("primitive SEQUENCE/SET")
    elif constructed and not (ber and number == 4):
        raise _malformed("constructed string or scalar is not DER")


def _check_primitive(tag: int, value: bytes) -> None:
    if tag == 0x01 and (len(value) != 1 or value[0] not in (0x00, 0xFF)):
        raise _malformed("BOOLEAN is not DER")
    if tag == 0x02:
        if not value:
            raise _malformed("empty INTEGER")
        if len(value) > 1 and (
            (value[0] == 0x00 and value[1] < 0x80) or (value[0] == 0xFF and value[1] >= 0x80)
        ):
            raise _malformed("non-minimal INTEGER")
    if tag == 0x05 and value:
        raise _malformed("NULL with content")


# --- SignedData --------------------------------------------------------------------------------


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


# --- signature ---------------------------------------------------------------------------------


def verify_signature(signed: SignedData, public_key: object) -> None:
    """Verify the SignerInfo's signature with ``public_key``; the key family must match."""
    algorithm = _HASHES[signed.digest]()
    try:
        if signed.signature_family == "rsa" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signed.signature, signed.signed_bytes, padding.PKCS1v15(), algorithm)
        elif signed.signature_family == "dsa" and isinstance(public_key, dsa.DSAPublicKey):
            public_key.verify(signed.signature, signed.signed_bytes, algorithm)
        else:
            raise IdentityRefused(
                ErrorType.IDENTITY_ALGORITHM_REFUSED,
                f"a {signed.signature_family} signature cannot be checked with this key",
            )
    except IdentityRefused:
        raise
    except (InvalidSignature, ValueError):
        raise IdentityRefused(
            ErrorType.IDENTITY_SIGNATURE_INVALID, "PKCS#7 signature does not verify"
        ) from None


def signer_certificate(signed: SignedData) -> EmbeddedCertificate:
    """The one embedded certificate named by the SignerInfo (issuer and serial number), never
    simply the first one: a document may carry other certificates to mislead."""
    matches = [
        cert
        for cert in signed.certificates
        if cert.serial == signed.signer_serial and cert.issuer_der == signed.signer_issuer_der
    ]
    if not matches:
        raise IdentityRefused(
            ErrorType.IDENTITY_CERTIFICATE_UNTRUSTED, "the signer's certificate is not embedded"
        )
    if len({cert.der for cert in matches}) != 1:
        raise _malformed("several embedded certificates match the signer")
    return matches[0]

"""Strict PKCS#7 / CMS SignedData handling shared by the EC2 and Azure verifiers.

Both clouds sign their instance identity as a PKCS#7 SignedData (RFC 2315 / RFC 5652) that
carries the JSON document as encapsulated ``data`` content. This package turns untrusted bytes
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

The package keeps the parts apart: :mod:`~clouds.pkcs7.encoding` (the TLV walk),
:mod:`~clouds.pkcs7.content` (base64 in, JSON out), :mod:`~clouds.pkcs7.signed_data` (the
parser) and :mod:`~clouds.pkcs7.signature` (the signature and the signer's certificate).
Callers import this package only.
"""

from clouds.pkcs7.content import decode_base64, load_json_object, optional_string
from clouds.pkcs7.encoding import MAX_DEPTH, MAX_DER_BYTES, check_encoding
from clouds.pkcs7.signed_data import (
    MAX_CERTIFICATES,
    OID_DATA,
    OID_SIGNED_DATA,
    STRONG_DIGESTS,
    EmbeddedCertificate,
    SignedData,
    parse_signed_data,
)
from clouds.pkcs7.signature import signer_certificate, verify_signature

__all__ = [
    "MAX_CERTIFICATES",
    "MAX_DEPTH",
    "MAX_DER_BYTES",
    "OID_DATA",
    "OID_SIGNED_DATA",
    "STRONG_DIGESTS",
    "EmbeddedCertificate",
    "SignedData",
    "check_encoding",
    "decode_base64",
    "load_json_object",
    "optional_string",
    "parse_signed_data",
    "signer_certificate",
    "verify_signature",
]

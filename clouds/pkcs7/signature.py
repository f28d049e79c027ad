"""Checking a parsed SignedData's signature with a key the caller trusts, and finding the
signer's embedded certificate."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa

from clouds.pkcs7.errors import malformed as _malformed
from clouds.pkcs7.signed_data import EmbeddedCertificate, SignedData
from contracts.errors import ErrorType, IdentityRefused

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


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

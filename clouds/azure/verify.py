"""Verify an Azure IMDS attested document (``/metadata/attested/document``).

Pure: no network, no Temporal, no clock of its own; roots, intermediates and ``now`` come in.

Input: the IMDS JSON ``{"encoding": "pkcs7", "signature": "<base64 DER>"}`` (other keys are
ignored). What is accepted, so that a local Azure IMDS emulator can produce it:

- PKCS#7 SignedData in strict DER (no indefinite lengths, no trailing bytes, at most 64 KiB),
  version 1, content type ``data`` with the JSON document inside (not detached), exactly one
  SignerInfo (version 1, issuer and serial number), digest SHA-256/384/512 (Azure's own
  ``sha256WithRSAEncryption`` in the digest field is read as SHA-256), RSA PKCS#1 v1.5.
  Signed attributes are optional, as real IMDS documents have none: without them the
  signature covers the content; with them contentType (data) and messageDigest are required.
  ``cryptography``'s ``pkcs7.PKCS7SignatureBuilder`` with ``PKCS7Options.Binary`` produces
  an accepted document.
- The signer certificate is the embedded certificate whose issuer and serial number the
  SignerInfo names (not the first one). Other embedded certificates, plus ``intermediates``,
  form an untrusted pool for path building; the chain must end at one of ``roots`` at ``now``
  under cryptography's WebPKI profile (RSA >= 2048 bits, SHA-256+ certificate signatures, CA
  certificates with critical basicConstraints and keyCertSign, AKI/SKI). The leaf must have an
  extendedKeyUsage with serverAuth or clientAuth (real leaves have both; S/MIME is not asked
  for) and a DNS subjectAltName equal to ``<domain>``, ``*.<domain>`` or ``<label>.<domain>``
  for a domain in ``allowed_san_domains``.
- The content JSON (no duplicate keys): ``nonce`` equal to the caller's challenge, ``vmId`` a
  UUID, ``timeStamp.createdOn`` / ``expiresOn`` as ``MM/DD/YY HH:MM:SS -0000`` with ``now``
  inside them and createdOn at most ``max_age`` old; ``subscriptionId`` (a UUID) and ``sku``
  when present (older documents lack them).
"""

from __future__ import annotations

import functools
import hmac
import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
)

from clouds import pkcs7
from contracts.errors import ErrorType, IdentityRefused
from contracts.identity import VerifiedIdentity
from contracts.providers import Provider

TRUST_DIR = Path(__file__).resolve().parent / "trust"
DEFAULT_SAN_DOMAINS = ("metadata.azure.com",)
#: How far in the future createdOn may lie before it counts as not yet valid.
CLOCK_SKEW = timedelta(minutes=1)

_TLS_EKUS = frozenset({ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH})
_TIMESTAMP = re.compile(r"[0-9]{2}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_RESOURCE_SUBSCRIPTION = re.compile(r"/subscriptions/([^/]+)/", re.IGNORECASE)


# --- trust material ----------------------------------------------------------------------------


def load_certificates(pem_bytes: bytes) -> list[x509.Certificate]:
    """All certificates of a PEM bundle (comment lines between them are fine)."""
    return x509.load_pem_x509_certificates(pem_bytes)


@functools.lru_cache(maxsize=1)
def production_roots() -> tuple[x509.Certificate, ...]:
    """The public roots shipped in clouds/azure/trust/roots.pem."""
    return tuple(load_certificates((TRUST_DIR / "roots.pem").read_bytes()))


@functools.lru_cache(maxsize=1)
def production_intermediates() -> tuple[x509.Certificate, ...]:
    """Known issuing CAs shipped in clouds/azure/trust/intermediates.pem."""
    return tuple(load_certificates((TRUST_DIR / "intermediates.pem").read_bytes()))


def trust_from_settings(
    roots_file: Path | None, intermediates_file: Path | None
) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """(roots, intermediates) from ``AzureSettings.roots_file`` / ``intermediates_file``;
    None means the material shipped with fleetpatch."""
    roots = (
        list(production_roots())
        if roots_file is None
        else load_certificates(Path(roots_file).read_bytes())
    )
    intermediates = (
        list(production_intermediates())
        if intermediates_file is None
        else load_certificates(Path(intermediates_file).read_bytes())
    )
    return roots, intermediates


# --- verification ------------------------------------------------------------------------------


def verify_azure_attested(
    attested: dict[str, Any],
    *,
    nonce: str | None,
    roots: list[x509.Certificate],
    intermediates: list[x509.Certificate],
    now: datetime,
    allowed_san_domains: Sequence[str] = DEFAULT_SAN_DOMAINS,
    max_age: timedelta = timedelta(minutes=10),
    require_nonce: bool = True,
    require_subscription: bool = True,
) -> VerifiedIdentity:
    """Verify an attested document and return what Azure signed about the VM.

    ``nonce`` is the challenge the VM was given; ``None`` is refused unless
    ``require_nonce=False``. A document without ``subscriptionId`` (IMDS api-version before
    2019-04-30) names no tenant it was signed for, and is refused (IdentityClaimsMissing) unless
    ``require_subscription=False`` (offline inspection of old samples): the tenant is never taken
    from an unsigned resource id. Raises ``IdentityRefused``: IdentityMalformed, IdentityTooLarge,
    IdentityAlgorithmRefused, IdentitySignatureInvalid, IdentityCertificateUntrusted,
    IdentitySubjectMismatch, IdentityNonceMismatch, IdentityClaimsMissing, IdentityExpired,
    IdentityNotYetValid. ``ValueError`` only for a caller error (naive ``now``, no roots).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not roots:
        raise ValueError("no Azure trust roots configured")
    signed = _parse(attested)
    signer = pkcs7.signer_certificate(signed)
    leaf = _load_certificate(signer.der)
    if not isinstance(leaf.public_key(), rsa.RSAPublicKey):
        raise IdentityRefused(ErrorType.IDENTITY_ALGORITHM_REFUSED, "signer key is not RSA")
    pkcs7.verify_signature(signed, leaf.public_key())
    pool = list(intermediates) + [
        _load_certificate(c.der) for c in signed.certificates if c.der != signer.der
    ]
    chain = _validate_chain(leaf, pool, roots, now)
    san = _matching_san(leaf, allowed_san_domains)
    document = pkcs7.load_json_object(signed.content)
    _check_nonce(document, nonce, require_nonce)
    vm_id = _uuid_claim(document, "vmId", required=True)
    created = _check_times(document, now, max_age)
    subscription = _uuid_claim(document, "subscriptionId", required=require_subscription)
    return VerifiedIdentity(
        provider=Provider.AZURE,
        cloud_account=subscription,
        instance_id=vm_id,
        issued_at=created,
        evidence={
            "form": "pkcs7",
            "signer_cert_sha256": leaf.fingerprint(hashes.SHA256()).hex(),
            "signer_subject": leaf.subject.rfc4514_string(),
            "signer_san": san,
            "chain_root_subject": chain[-1].subject.rfc4514_string(),
            "sku": pkcs7.optional_string(document, "sku", max_length=256),
            "content_sha256": signed.content_sha256,
        },
    )


def peek_azure_instance_key(attested: dict[str, Any], resource_id: str | None) -> tuple[str, str]:
    """(subscription id, vmId) read WITHOUT verification, only to name the enrollment
    workflow. The subscription must be in the document (the scripts ask IMDS for an api-version
    that includes it); a resource id naming another subscription is refused."""
    document = pkcs7.load_json_object(_parse(attested).content)
    vm_id = _uuid_claim(document, "vmId", required=True)
    from_resource = _subscription_from_resource_id(resource_id)
    subscription = _uuid_claim(document, "subscriptionId", required=False)
    if not subscription:
        raise IdentityRefused(
            ErrorType.IDENTITY_CLAIMS_MISSING,
            "the attested document has no subscriptionId: request it with IMDS api-version "
            "2020-09-01 or later",
        )
    if from_resource and subscription != from_resource:
        raise IdentityRefused(
            ErrorType.IDENTITY_DOCUMENT_MISMATCH,
            "the resource id names another subscription than the document",
        )
    return subscription, vm_id


# --- helpers -----------------------------------------------------------------------------------


def _parse(attested: object) -> pkcs7.SignedData:
    if not isinstance(attested, dict):
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "attested must be a JSON object")
    if attested.get("encoding") != "pkcs7":
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "encoding must be pkcs7")
    der = pkcs7.decode_base64(attested.get("signature"), what="signature")
    return pkcs7.parse_signed_data(
        der,
        allow_indefinite=False,
        allowed_digests=pkcs7.STRONG_DIGESTS,
        require_signed_attributes=False,  # real IMDS documents carry none
    )


def _load_certificate(der: bytes) -> x509.Certificate:
    """Parse an embedded certificate completely now: cryptography parses the key, names and
    extensions lazily, and a malformed one must be refused here, not fail later."""
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.public_key()
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        list(cert.extensions)
        return cert
    except UnsupportedAlgorithm:
        raise IdentityRefused(
            ErrorType.IDENTITY_ALGORITHM_REFUSED, "embedded certificate has an unknown key type"
        ) from None
    except Exception:  # ValueError, TypeError (e.g. a name attribute of the wrong string type)
        raise IdentityRefused(
            ErrorType.IDENTITY_MALFORMED, "embedded certificate is malformed"
        ) from None


def _ee_eku(policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage) -> None:
    if not _TLS_EKUS & set(eku):
        raise ValueError("leaf is not a TLS server or client certificate")


def _ca_eku(policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None) -> None:
    if eku is not None and not (_TLS_EKUS | {ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}) & set(
        eku
    ):
        raise ValueError("issuing CA is not for TLS")


# The client verifier alone demands clientAuth on the leaf and every CA; Azure's metadata
# certificates are TLS certificates that may carry serverAuth only (CA/Browser Forum rules drop
# clientAuth from such certificates), so either TLS purpose is accepted instead. Everything else
# stays cryptography's WebPKI default.
_EE_POLICY = ExtensionPolicy.webpki_defaults_ee().require_present(
    x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _ee_eku
)
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _ca_eku
)


def _validate_chain(
    leaf: x509.Certificate,
    pool: list[x509.Certificate],
    roots: list[x509.Certificate],
    now: datetime,
) -> list[x509.Certificate]:
    verifier = (
        PolicyBuilder()
        .store(Store(list(roots)))
        .time(now)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )
    try:
        return list(verifier.verify(leaf, pool).chain)
    except Exception as exc:  # VerificationError, or anything odd in an untrusted certificate
        raise IdentityRefused(
            ErrorType.IDENTITY_CERTIFICATE_UNTRUSTED, f"signer chain not trusted: {exc}"[:300]
        ) from None


def san_matches(name: str, domain: str) -> bool:
    """``domain`` itself, its wildcard ``*.domain``, or exactly one DNS label in front of it."""
    name, domain = name.lower(), domain.lower().rstrip(".")
    if name == domain or name == f"*.{domain}":
        return True
    label, dot, rest = name.partition(".")
    return bool(dot) and rest == domain and _LABEL.fullmatch(label) is not None


def _matching_san(leaf: x509.Certificate, domains: Sequence[str]) -> str:
    try:
        names = leaf.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    for name in names:
        if any(san_matches(name, domain) for domain in domains):
            return name
    raise IdentityRefused(
        ErrorType.IDENTITY_SUBJECT_MISMATCH, "signer certificate is not for Azure metadata"
    )


def _check_nonce(document: dict[str, Any], nonce: str | None, require_nonce: bool) -> None:
    if nonce is None:
        if require_nonce:
            raise IdentityRefused(ErrorType.IDENTITY_NONCE_MISMATCH, "no challenge to compare")
        return
    signed_nonce = document.get("nonce")
    if signed_nonce is None:
        raise IdentityRefused(ErrorType.IDENTITY_NONCE_MISMATCH, "document has no nonce")
    if not isinstance(signed_nonce, str):
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "nonce is not a string")
    if not hmac.compare_digest(signed_nonce.encode("utf-8"), nonce.encode("utf-8")):
        raise IdentityRefused(ErrorType.IDENTITY_NONCE_MISMATCH, "nonce does not match")


def _uuid_claim(document: dict[str, Any], name: str, *, required: bool) -> str:
    value = document.get(name)
    if value is None or value == "":
        if required:
            raise IdentityRefused(ErrorType.IDENTITY_CLAIMS_MISSING, f"{name} is missing")
        return ""
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, f"{name} is not a UUID")
    return str(uuid.UUID(value))  # canonical lower case: one VM, one key


def _timestamp(stamp: dict[str, Any], name: str) -> datetime:
    value = stamp.get(name)
    if value is None:
        raise IdentityRefused(ErrorType.IDENTITY_CLAIMS_MISSING, f"timeStamp.{name} is missing")
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, f"timeStamp.{name} is malformed")
    try:
        return datetime.strptime(value, "%m/%d/%y %H:%M:%S %z")
    except ValueError:
        raise IdentityRefused(
            ErrorType.IDENTITY_MALFORMED, f"timeStamp.{name} is malformed"
        ) from None


def _check_times(document: dict[str, Any], now: datetime, max_age: timedelta) -> datetime:
    stamp = document.get("timeStamp")
    if stamp is None:
        raise IdentityRefused(ErrorType.IDENTITY_CLAIMS_MISSING, "timeStamp is missing")
    if not isinstance(stamp, dict):
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "timeStamp is not an object")
    created, expires = _timestamp(stamp, "createdOn"), _timestamp(stamp, "expiresOn")
    if expires <= created:
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "expiresOn is not after createdOn")
    if created > now + CLOCK_SKEW:
        raise IdentityRefused(ErrorType.IDENTITY_NOT_YET_VALID, "createdOn is in the future")
    if now >= expires:
        raise IdentityRefused(ErrorType.IDENTITY_EXPIRED, "the document has expired")
    if now - created > max_age:
        raise IdentityRefused(ErrorType.IDENTITY_EXPIRED, "the document is older than allowed")
    return created


def _subscription_from_resource_id(resource_id: str | None) -> str:
    if resource_id is None:
        return ""
    if not isinstance(resource_id, str) or len(resource_id) > 1024:
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "resource id is malformed")
    match = _RESOURCE_SUBSCRIPTION.match(resource_id)
    if match is None or not _UUID.fullmatch(match.group(1)):
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "resource id names no subscription")
    return str(uuid.UUID(match.group(1)))

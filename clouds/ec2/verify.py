"""Verify an EC2 instance identity document against AWS's pinned per-region certificates.

Pure: no network, no Temporal, no clock of its own; trust and ``now`` come from the caller.

Input (``identity``), what the VM read from IMDS ``/latest/dynamic/instance-identity/...``:

- ``{"rsa2048": b64}``: the PKCS#7 from ``/rsa2048`` (RSA-2048, SHA-256 or stronger), optionally
  with ``"document": str`` beside it (the ``/document`` text; must equal the signed content
  byte for byte, else IdentityDocumentMismatch);
- ``{"pkcs7": b64}``: the PKCS#7 from ``/pkcs7`` (DSA with SHA-1: AWS's legacy form; RSA in
  the China regions, whose pinned ``dsa/`` certificates hold RSA keys), optionally with
  ``"document"``;
- ``{"document": str, "signature": b64}``: the document and the detached RSA PKCS#1 v1.5
  SHA-256 signature from ``/signature`` over its exact UTF-8 bytes.

Base64 may contain line breaks (IMDS wraps at 64 columns) but must otherwise be canonical.
Other keys are refused. Both PKCS#7 forms must carry signed attributes (contentType = data,
messageDigest); the indefinite-length BER that IMDS emits is accepted, anything else must be DER.

Trust: the region named in the signed content selects the pinned certificate
(:class:`Ec2TrustStore`, files ``{rsa2048,rsa,dsa}/<region>.pem``); the signature must verify with
that certificate's key. Certificates embedded in the PKCS#7 are ignored, so is the SignerInfo's
issuer/serial (AWS reissues certificates with unchanged keys). A local EC2 emulator produces
documents this module accepts by signing with a key whose certificate it writes to such a
directory, and by sending the document JSON with at least ``accountId`` (12 digits),
``instanceId`` (``i-`` + 8 or 17 hex digits), ``region`` and ``pendingTime``
(``YYYY-MM-DDTHH:MM:SSZ``); ``instanceType`` and ``imageId`` are recorded when present.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa

from clouds import pkcs7
from contracts.errors import ErrorType, IdentityRefused
from contracts.identity import VerifiedIdentity
from contracts.providers import Provider

FORMS = frozenset({"rsa2048", "pkcs7", "signature"})
#: form -> sub-directory of a trust directory
FORM_DIRS = {"rsa2048": "rsa2048", "pkcs7": "dsa", "signature": "rsa"}
PRODUCTION_TRUST_DIR = Path(__file__).resolve().parent / "trust" / "aws-iid"
#: Largest document text accepted in the detached form (real ones are about 500 bytes).
MAX_DOCUMENT_BYTES = 16 * 1024
#: How far in the future pendingTime may lie before it counts as not yet valid.
CLOCK_SKEW = timedelta(minutes=1)

_FORM_DIGESTS = {"rsa2048": pkcs7.STRONG_DIGESTS, "pkcs7": pkcs7.STRONG_DIGESTS | {"sha1"}}
# The /pkcs7 form is DSA in most regions; AWS's China regions pin an RSA certificate for it.
_FORM_FAMILIES = {"rsa2048": frozenset({"rsa"}), "pkcs7": frozenset({"dsa", "rsa"})}
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")
_ACCOUNT = re.compile(r"[0-9]{12}")
_INSTANCE = re.compile(r"i-([0-9a-f]{8}|[0-9a-f]{17})")
_PENDING = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


@dataclass(frozen=True)
class Ec2TrustStore:
    """Pinned certificates: form (``rsa2048`` | ``pkcs7`` | ``signature``) -> region -> cert."""

    certificates: Mapping[str, Mapping[str, x509.Certificate]] = field(default_factory=dict)

    def certificate(self, form: str, region: str) -> x509.Certificate | None:
        return self.certificates.get(form, {}).get(region)

    def regions(self, form: str) -> frozenset[str]:
        return frozenset(self.certificates.get(form, {}))

    @classmethod
    def from_dir(cls, path: Path | str) -> Ec2TrustStore:
        """Load ``path/{rsa2048,rsa,dsa}/<region>.pem``; a missing sub-directory leaves that form
        without regions. Raises ValueError on a file that is not one certificate of the
        expected key type (a configuration error, not an identity refusal)."""
        root = Path(path)
        if not root.is_dir():
            raise ValueError(f"EC2 trust directory {root} does not exist")
        loaded: dict[str, dict[str, x509.Certificate]] = {}
        for form, sub in FORM_DIRS.items():
            by_region: dict[str, x509.Certificate] = {}
            for pem in sorted((root / sub).glob("*.pem")):
                region = pem.stem
                if not _REGION.fullmatch(region):
                    raise ValueError(f"{pem}: file name is not a region name")
                certs = x509.load_pem_x509_certificates(pem.read_bytes())
                if len(certs) != 1:
                    raise ValueError(f"{pem}: expected exactly one certificate")
                key = certs[0].public_key()
                wanted = (
                    (dsa.DSAPublicKey, rsa.RSAPublicKey) if form == "pkcs7" else rsa.RSAPublicKey
                )
                if not isinstance(key, wanted):
                    raise ValueError(f"{pem}: unexpected key type for the {form} form")
                by_region[region] = certs[0]
            loaded[form] = by_region
        return cls(certificates=loaded)

    @classmethod
    def production(cls) -> Ec2TrustStore:
        """AWS's certificates shipped with fleetpatch (clouds/ec2/trust/aws-iid)."""
        return _production_store()

    @classmethod
    def from_settings(cls, certs_dir: Path | None) -> Ec2TrustStore:
        """``Ec2Settings.certs_dir``: None means the production certificates."""
        return cls.production() if certs_dir is None else cls.from_dir(certs_dir)


@functools.lru_cache(maxsize=1)
def _production_store() -> Ec2TrustStore:
    return Ec2TrustStore.from_dir(PRODUCTION_TRUST_DIR)


def verify_ec2_identity(
    identity: dict[str, Any],
    *,
    trust: Ec2TrustStore,
    now: datetime,
    accepted_forms: frozenset[str] = frozenset({"rsa2048"}),
    max_age: timedelta | None = None,
) -> VerifiedIdentity:
    """Verify ``identity`` and return what AWS signed about the instance.

    Raises ``IdentityRefused``: IdentityAlgorithmRefused (form not accepted, weak digest),
    IdentityRegionUnknown (no pinned certificate for the document's region and form),
    IdentitySignatureInvalid, IdentityDocumentMismatch, IdentityNotYetValid / IdentityExpired
    (``pendingTime`` after ``now`` / older than ``max_age``), IdentityMalformed,
    IdentityClaimsMissing, IdentityTooLarge.
    """
    _require_aware(now)
    form, blob, beside = _split_identity(identity)
    if form not in accepted_forms:
        raise IdentityRefused(
            ErrorType.IDENTITY_ALGORITHM_REFUSED, f"the {form} form is not accepted"
        )
    if form == "signature":
        content = _document_bytes(beside)
        signature = pkcs7.decode_base64(blob, what="signature", max_bytes=1024)
        document = pkcs7.load_json_object(content)
        cert = _pinned(trust, form, document)
        _verify_detached(cert, signature, content)
    else:
        signed = _parse_pkcs7(form, blob)
        content = signed.content
        document = pkcs7.load_json_object(content)
        cert = _pinned(trust, form, document)
        pkcs7.verify_signature(signed, cert.public_key())
        if beside is not None and _document_bytes(beside) != content:
            raise IdentityRefused(
                ErrorType.IDENTITY_DOCUMENT_MISMATCH,
                "the document sent beside the PKCS#7 is not the signed content",
            )
    claims = _claims(document)
    pending = claims["pendingTime"]
    if pending > now + CLOCK_SKEW:
        raise IdentityRefused(ErrorType.IDENTITY_NOT_YET_VALID, "pendingTime is in the future")
    if max_age is not None and now - pending > max_age:
        raise IdentityRefused(ErrorType.IDENTITY_EXPIRED, "pendingTime is older than allowed")
    return VerifiedIdentity(
        provider=Provider.AWS,
        cloud_account=claims["accountId"],
        instance_id=claims["instanceId"],
        issued_at=pending,
        region=claims["region"],
        evidence={
            "form": form,
            "signer_cert_sha256": cert.fingerprint(hashes.SHA256()).hex(),
            "content_sha256": hashlib.sha256(content).hexdigest(),
            "instance_type": claims["instanceType"],
            "image_id": claims["imageId"],
        },
    )


def peek_ec2_instance_key(identity: dict[str, Any]) -> tuple[str, str]:
    """(account id, instance id) read WITHOUT verification, only to name the enrollment
    workflow; the workflow verifies before trusting anything. Raises IdentityRefused
    (IdentityMalformed and friends) on anything unparseable."""
    form, blob, beside = _split_identity(identity)
    if form == "signature":
        document = pkcs7.load_json_object(_document_bytes(beside))
    else:
        if beside is not None:
            _document_bytes(beside)  # the same shape rules as verification
        document = pkcs7.load_json_object(_parse_pkcs7(form, blob).content)
    account = _string_claim(document, "accountId", _ACCOUNT)
    instance = _string_claim(document, "instanceId", _INSTANCE)
    return account, instance


# --- helpers -----------------------------------------------------------------------------------


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")


def _split_identity(identity: object) -> tuple[str, object, object]:
    """Return (form, signed blob, document beside it or None)."""
    if not isinstance(identity, dict):
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "identity must be a JSON object")
    keys = set(identity)
    if keys - {"rsa2048", "pkcs7", "document", "signature"}:
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "identity has unexpected fields")
    forms = [name for name in ("rsa2048", "pkcs7", "signature") if name in keys]
    if len(forms) != 1:
        raise IdentityRefused(
            ErrorType.IDENTITY_MALFORMED, "identity must carry exactly one signed form"
        )
    form = forms[0]
    if form == "signature" and "document" not in keys:
        raise IdentityRefused(
            ErrorType.IDENTITY_CLAIMS_MISSING, "a detached signature needs its document"
        )
    return form, identity[form], identity.get("document")


def _document_bytes(document: object) -> bytes:
    if not isinstance(document, str):
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "document must be a string")
    if len(document) > MAX_DOCUMENT_BYTES:
        raise IdentityRefused(ErrorType.IDENTITY_TOO_LARGE, "document is too large")
    try:
        data = document.encode("utf-8")
    except UnicodeEncodeError:
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "document is not UTF-8") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise IdentityRefused(ErrorType.IDENTITY_TOO_LARGE, "document is too large")
    return data


def _parse_pkcs7(form: str, blob: object) -> pkcs7.SignedData:
    der = pkcs7.decode_base64(blob, what=form)
    signed = pkcs7.parse_signed_data(
        der,
        allow_indefinite=True,  # EC2 IMDS emits indefinite-length BER
        allowed_digests=_FORM_DIGESTS[form],
        require_signed_attributes=True,
    )
    if signed.signature_family not in _FORM_FAMILIES[form]:
        raise IdentityRefused(
            ErrorType.IDENTITY_ALGORITHM_REFUSED,
            f"the {form} form may not be signed with {signed.signature_family.upper()}",
        )
    return signed


def _pinned(trust: Ec2TrustStore, form: str, document: dict[str, Any]) -> x509.Certificate:
    """The pinned certificate of the region the (not yet verified) content names; the
    signature check that follows is what makes the region claim true."""
    region = _string_claim(document, "region", _REGION)
    cert = trust.certificate(form, region)
    if cert is None:
        raise IdentityRefused(
            ErrorType.IDENTITY_REGION_UNKNOWN,
            f"no pinned {form} certificate for region {region}",
        )
    return cert


def _verify_detached(cert: x509.Certificate, signature: bytes, content: bytes) -> None:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise IdentityRefused(ErrorType.IDENTITY_ALGORITHM_REFUSED, "pinned key is not RSA")
    try:
        key.verify(signature, content, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise IdentityRefused(
            ErrorType.IDENTITY_SIGNATURE_INVALID, "detached signature does not verify"
        ) from None


def _string_claim(document: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = document.get(name)
    if value is None:
        raise IdentityRefused(ErrorType.IDENTITY_CLAIMS_MISSING, f"{name} is missing")
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, f"{name} is malformed")
    return value


def _claims(document: dict[str, Any]) -> dict[str, Any]:
    pending_text = _string_claim(document, "pendingTime", _PENDING)
    try:
        pending = datetime.strptime(pending_text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "pendingTime is malformed") from None
    return {
        "accountId": _string_claim(document, "accountId", _ACCOUNT),
        "instanceId": _string_claim(document, "instanceId", _INSTANCE),
        "region": _string_claim(document, "region", _REGION),
        "pendingTime": pending,
        "instanceType": pkcs7.optional_string(document, "instanceType", max_length=128),
        "imageId": pkcs7.optional_string(document, "imageId", max_length=128),
    }

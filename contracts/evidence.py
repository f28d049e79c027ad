"""Identity evidence: how an enrolled VM proved who it is, for the estate store's audit chain.

``EnrollVm`` records one ``EnrollmentEvidence`` when it ends enrolled (activity
``record_enrollment_evidence`` on the aws worker, the estate store's only writers). It holds what
an auditor needs to re-check the decision and nothing that could enroll a VM again: the key that
signed (``key_kind`` / ``key_id``), a SHA-256 ``identity_sha256`` of the identity the VM presented
(never the identity itself: it is a credential), when it was verified, and the enrollment run.

``key_kind`` says what ``key_id`` is:
- ``kid``: the JWT header ``kid`` of the key that signed (GCP identity tokens);
- ``signer_certificate_sha256``: the SHA-256 fingerprint (hex) of the PKCS#7 signer certificate
  (Azure attested documents, EC2 identity documents);
- ``link_key_sha256``: the fingerprint of the vCenter link's public key that signed the token
  (``sha256:<hex of the SubjectPublicKeyInfo DER>``).

Fields are only ever added, with defaults: running histories hold these shapes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

#: Longest key id kept (the estate column's width); longer ones are cut, never refused.
MAX_KEY_ID = 255


class KeyKind(StrEnum):
    KID = "kid"
    SIGNER_CERTIFICATE = "signer_certificate_sha256"
    LINK_KEY = "link_key_sha256"


#: The verifier's evidence field that names the signing key, per kind (first match wins).
_KEY_FIELDS: tuple[tuple[str, KeyKind], ...] = (
    ("kid", KeyKind.KID),
    ("signer_cert_sha256", KeyKind.SIGNER_CERTIFICATE),
    ("key_fingerprint", KeyKind.LINK_KEY),
)


@dataclass
class EnrollmentEvidence:
    """One enrollment's proof of identity, as the estate store keeps it."""

    workflow_id: str
    run_id: str
    provider: str  # gcp | azure | vmware | aws
    instance_key: str  # "{cloud account}/{instance id}", from the verified identity
    identity_sha256: str  # hex SHA-256 of the identity the VM presented (see ``identity_digest``)
    verified_at: datetime  # when the provider's worker verified it (timezone-aware UTC)
    key_kind: str | None = None  # a KeyKind value; None when the verifier named no key
    key_id: str | None = None
    cloud_account: str | None = None
    customer: str | None = None
    systems_account: str | None = None
    managed_instance_id: str | None = None  # mi-... or i-...
    patch_group: str | None = None


@dataclass
class RecordEvidenceResult:
    created: bool  # False: this run's evidence was already recorded (a retried activity)


def identity_digest(identity: dict[str, Any]) -> str:
    """SHA-256 (hex) of the identity object the VM POSTed, as canonical JSON (keys sorted, no
    spaces, UTF-8): anyone holding the registration body can recompute it; nobody can go back."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def signing_key(evidence: dict[str, str]) -> tuple[str | None, str | None]:
    """``(key_kind, key_id)`` from a verifier's evidence (``VerifiedIdentity.evidence``)."""
    for name, kind in _KEY_FIELDS:
        value = evidence.get(name)
        if value:
            return kind.value, str(value)[:MAX_KEY_ID]
    return None, None

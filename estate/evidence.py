"""Identity evidence in the estate store: written by EnrollVm's last activity, read with an instance.

An enrollment may end before ComplianceSync has created its instance's row, or after: the
evidence has a table of its own (``enrollment_evidence``), which no snapshot touches, and reads
join it to the instance. ``record`` is the one writer (the aws worker's activity calls it inside
its transaction, like ``estate.writes``); ``for_instance`` the one reader.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import case, or_, select
from sqlalchemy.orm import Session

from contracts.evidence import MAX_KEY_ID, EnrollmentEvidence
from estate.schema import EnrollmentEvidenceRow, Instance

_HEX = frozenset("0123456789abcdef")
_COPIED = ("provider", "instance_key", "cloud_account", "customer", "systems_account", "managed_instance_id",
           "patch_group", "key_kind", "key_id", "identity_sha256", "verified_at")


def _check(evidence: EnrollmentEvidence) -> None:
    digest = evidence.identity_sha256
    if len(digest) != 64 or not set(digest) <= _HEX:
        raise ValueError("identity_sha256 must be a lowercase hex SHA-256 digest")
    if evidence.verified_at.tzinfo is None:
        raise ValueError("verified_at must be timezone-aware")
    if not (evidence.workflow_id and evidence.run_id and evidence.provider and evidence.instance_key):
        raise ValueError("workflow_id, run_id, provider and instance_key are required")
    if evidence.key_id is not None and len(evidence.key_id) > MAX_KEY_ID:
        raise ValueError(f"key_id is longer than {MAX_KEY_ID} characters")


def record(session: Session, evidence: EnrollmentEvidence, now: datetime | None = None) -> bool:
    """Keep one enrollment run's evidence (idempotent per workflow and run: a retry rewrites the
    same row). True when the row is new."""
    _check(evidence)
    query = select(EnrollmentEvidenceRow).where(
        EnrollmentEvidenceRow.workflow_id == evidence.workflow_id, EnrollmentEvidenceRow.run_id == evidence.run_id
    )
    row = session.scalars(query).one_or_none()
    created = row is None
    if row is None:
        row = EnrollmentEvidenceRow(workflow_id=evidence.workflow_id, run_id=evidence.run_id)
        session.add(row)
    for name in _COPIED:
        setattr(row, name, getattr(evidence, name))
    row.recorded_at = now or datetime.now(UTC)
    session.flush()
    return created


def for_instance(session: Session, instance: Instance) -> EnrollmentEvidenceRow | None:
    """The evidence of the enrollment that brought ``instance`` in: the one that names its managed
    instance id, else the newest of its provider and instance key. Only evidence of the same
    customer is ever joined (a row of another tenant is never shown)."""
    table = EnrollmentEvidenceRow
    matches = [table.managed_instance_id == instance.managed_instance_id]
    if instance.provider and instance.instance_key:
        matches.append((table.provider == instance.provider) & (table.instance_key == instance.instance_key))
    query = select(table).where(or_(*matches))
    if instance.customer is not None:
        query = query.where(table.customer == instance.customer)
    own = case((table.managed_instance_id == instance.managed_instance_id, 0), else_=1)
    query = query.order_by(own, table.verified_at.desc(), table.id.desc()).limit(1)
    return session.scalars(query).first()

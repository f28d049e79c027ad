"""What Reconcile did, in the estate store: one row per action of each run that was not a dry run.

Deregistrations, tag changes, deleted activations, EC2 tag changes and labelled VMs reported as
never enrolled are kept with the reason and the evidence that decided them, whether applied or
failed (with the error). Rows are never updated by a later run and never deleted (audit); a retry
of the recording activity rewrites the same rows (keyed by workflow, run and position). ``record``
is the one writer (the aws worker's activity calls it inside its transaction); ``for_instance``
the one reader, always in the caller's scope. The table lives here, not in ``schema``; the
migrations' environment imports this module so that ``Base.metadata`` holds it.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from contracts.reconcile import ActionKind, RecordReconcileInput
from estate.results import InstanceRow, Scope
from estate.schema import ID, NAME, Base, UtcDateTime

#: Kinds whose target is a managed instance id.
_ON_MANAGED = frozenset({ActionKind.DEREGISTER, ActionKind.RETAG})
#: How many events an instance's page shows (newest first).
SHOWN = 50


class ReconcileEvent(Base):
    __tablename__ = "reconcile_events"
    __table_args__ = (
        UniqueConstraint("workflow_id", "run_id", "position"),
        Index(None, "managed_instance_id"),
        Index(None, "instance_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(String(512))
    run_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    provider: Mapped[str] = mapped_column(String(16))
    cloud_account: Mapped[str] = mapped_column(NAME)
    customer: Mapped[str | None] = mapped_column(NAME)
    systems_account: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    instance_key: Mapped[str] = mapped_column(NAME)
    target: Mapped[str] = mapped_column(NAME)
    managed_instance_id: Mapped[str | None] = mapped_column(ID)
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)  # JSON object
    tags: Mapped[str] = mapped_column(Text)  # JSON object: a retag's new tags
    applied: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)


def record(session: Session, run: RecordReconcileInput) -> int:
    """Keep every action of one run (idempotent per workflow, run and position); rows written."""
    if run.at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    if not (run.workflow_id and run.run_id):
        raise ValueError("workflow_id and run_id are required")
    existing = {row.position: row for row in session.scalars(select(ReconcileEvent).where(
        ReconcileEvent.workflow_id == run.workflow_id, ReconcileEvent.run_id == run.run_id))}
    for position, action in enumerate(run.actions):
        row = existing.get(position) or ReconcileEvent(workflow_id=run.workflow_id, run_id=run.run_id, position=position)
        session.add(row)
        row.recorded_at, row.provider, row.cloud_account = run.at, run.provider.value, run.cloud_account
        row.customer, row.systems_account = run.customer, run.systems_account
        row.kind, row.instance_key, row.target = action.kind.value, action.instance_key, action.target
        row.managed_instance_id = action.target if action.kind in _ON_MANAGED else None
        row.reason, row.applied, row.error = action.reason, action.applied, action.error
        row.evidence = json.dumps(action.evidence, sort_keys=True)
        row.tags = json.dumps(action.tags, sort_keys=True)
    session.flush()
    return len(run.actions)


def for_instance(session: Session, scope: Scope, instance: InstanceRow) -> list[dict[str, object]]:
    """What reconcile did about ``instance`` (by its managed instance id, or its instance key in
    its provider), newest first, only rows of the caller's scope."""
    table = ReconcileEvent
    matches = [table.managed_instance_id == instance.managed_instance_id]
    if instance.instance_key and instance.provider:
        matches.append((table.instance_key == instance.instance_key) & (table.provider == instance.provider)
                       & table.managed_instance_id.is_(None))
    query = select(table).where(or_(*matches))
    if scope.customer is not None:
        query = query.where(table.customer == scope.customer)
    rows = session.scalars(query.order_by(table.recorded_at.desc(), table.id.desc()).limit(SHOWN))
    return [_doc(row) for row in rows]


def _doc(row: ReconcileEvent) -> dict[str, object]:
    return {
        "at": row.recorded_at.isoformat(), "action": row.kind, "target": row.target, "reason": row.reason,
        "evidence": json.loads(row.evidence), "tags": json.loads(row.tags), "applied": row.applied,
        "error": row.error, "cloud_account": row.cloud_account, "systems_account": row.systems_account,
        "workflow_id": row.workflow_id, "run_id": row.run_id,
    }

"""The estate store's tables (SQLAlchemy 2). Alembic migrations in ``estate/migrations`` create them.

Instances are keyed by SSM's managed instance id; ``customer`` is copied onto each instance row so
that every scoped read filters one indexed column. Instances that leave SSM keep their row with
``departed_at`` set (audit); nothing here is ever deleted except an instance's own patch and
software lists, which each snapshot replaces.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    case,
    false,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (naive storage) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("estate timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if getattr(dialect, "name", "") == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


ID = String(64)
NAME = String(255)


class Instance(Base):
    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    managed_instance_id: Mapped[str] = mapped_column(ID, unique=True)
    systems_account: Mapped[str] = mapped_column(String(32))
    instance_key: Mapped[str | None] = mapped_column(NAME)
    provider: Mapped[str | None] = mapped_column(String(16))
    customer: Mapped[str | None] = mapped_column(NAME)
    cloud_account: Mapped[str | None] = mapped_column(NAME)
    patch_group: Mapped[str | None] = mapped_column(String(64))
    os_name: Mapped[str | None] = mapped_column(String(128))
    os_version: Mapped[str | None] = mapped_column(String(64))
    platform_type: Mapped[str | None] = mapped_column(String(32))
    agent_version: Mapped[str | None] = mapped_column(String(64))
    ping_status: Mapped[str | None] = mapped_column(String(32))
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime)
    workflow_id: Mapped[str | None] = mapped_column(String(512))
    workflow_run_id: Mapped[str | None] = mapped_column(String(64))
    evidence_provider: Mapped[str | None] = mapped_column(String(16))
    evidence_key_id: Mapped[str | None] = mapped_column(String(255))
    evidence_digest: Mapped[str | None] = mapped_column(String(128))
    evidence_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    installed: Mapped[int] = mapped_column(Integer, default=0)
    installed_other: Mapped[int] = mapped_column(Integer, default=0)
    installed_pending_reboot: Mapped[int] = mapped_column(Integer, default=0)
    installed_rejected: Mapped[int] = mapped_column(Integer, default=0)
    missing: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    not_applicable: Mapped[int] = mapped_column(Integer, default=0)
    critical_missing: Mapped[int] = mapped_column(Integer, default=0)  # missing/failed Critical patches
    baseline_id: Mapped[str | None] = mapped_column(String(128))
    operation: Mapped[str | None] = mapped_column(String(16))
    operation_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    operation_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    compliance: Mapped[str] = mapped_column(String(16))
    # 0 non_compliant, 1 unknown, 2 compliant: "failing first" ordering with keyset pagination.
    compliance_rank: Mapped[int] = mapped_column(SmallInteger)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    synced_at: Mapped[datetime] = mapped_column(UtcDateTime)  # the snapshot or window result it reflects
    departed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index(None, "customer", "managed_instance_id"),
        Index(None, "customer", "provider", "patch_group"),
        Index(None, "systems_account", "departed_at"),
        Index(None, "compliance_rank", "managed_instance_id"),
        Index(None, "customer", "compliance_rank", "managed_instance_id"),
    )


class Patch(Base):
    __tablename__ = "patches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(Text)
    kb_id: Mapped[str] = mapped_column(NAME)
    classification: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(32))
    installed_time: Mapped[datetime | None] = mapped_column(UtcDateTime)


class PatchCve(Base):
    """One CVE a patch fixes; ``instance_id`` and ``state`` copied for the CVE look-up."""

    __tablename__ = "patch_cves"

    patch_id: Mapped[int] = mapped_column(ForeignKey("patches.id", ondelete="CASCADE"), primary_key=True)
    cve_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(32))

    __table_args__ = (Index(None, "cve_id", "state", "instance_id"), Index(None, "instance_id"))


class Software(Base):
    __tablename__ = "software"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(NAME)
    version: Mapped[str | None] = mapped_column(String(128))
    publisher: Mapped[str | None] = mapped_column(NAME)
    architecture: Mapped[str | None] = mapped_column(String(32))


class Baseline(Base):
    __tablename__ = "baselines"

    systems_account: Mapped[str] = mapped_column(String(32), primary_key=True)
    baseline_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    operating_system: Mapped[str | None] = mapped_column(String(64))
    approval_rule: Mapped[str | None] = mapped_column(Text)
    patch_group: Mapped[str | None] = mapped_column(String(64))
    synced_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WindowRunRow(Base):
    __tablename__ = "window_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    window_workflow_id: Mapped[str] = mapped_column(String(512))
    run_id: Mapped[str] = mapped_column(String(64))
    systems_account: Mapped[str] = mapped_column(String(32))
    patch_group: Mapped[str] = mapped_column(String(64))
    managed_instance_id: Mapped[str] = mapped_column(ID)
    status: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(64))
    installed: Mapped[int] = mapped_column(Integer, default=0)
    missing: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    ended: Mapped[datetime | None] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    os: Mapped[str | None] = mapped_column(String(32))  # OS family as the window planned it
    held: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # scanned only: no early instance of this OS

    __table_args__ = (
        UniqueConstraint("run_id", "managed_instance_id"),
        Index(None, "managed_instance_id", "ended"),
    )


class ComplianceAggregate(Base):
    __tablename__ = "compliance_aggregates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    customer: Mapped[str | None] = mapped_column(NAME)
    provider: Mapped[str | None] = mapped_column(String(16))
    patch_group: Mapped[str | None] = mapped_column(String(64))
    instances: Mapped[int] = mapped_column(Integer)
    compliant: Mapped[int] = mapped_column(Integer)
    non_compliant: Mapped[int] = mapped_column(Integer)
    unknown: Mapped[int] = mapped_column(Integer)
    missing: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    critical_missing: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index(None, "at"), Index(None, "customer", "at"))


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the whole token
    label: Mapped[str] = mapped_column(NAME, default="")
    customer: Mapped[str | None] = mapped_column(NAME)  # None: admin
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


def counter_columns() -> list[Any]:
    """The compliance counters over ``Instance`` rows, labelled as in ``estate.results.Counters``."""

    def count_of(state: str) -> Any:
        return func.coalesce(func.sum(case((Instance.compliance == state, 1), else_=0)), 0)

    return [
        func.count(Instance.id).label("instances"),
        count_of("compliant").label("compliant"),
        count_of("non_compliant").label("non_compliant"),
        count_of("unknown").label("unknown"),
        func.coalesce(func.sum(Instance.missing), 0).label("missing"),
        func.coalesce(func.sum(Instance.failed), 0).label("failed"),
        func.coalesce(func.sum(case((Instance.critical_missing > 0, 1), else_=0)), 0).label("critical_missing"),
    ]


class EnrollmentEvidenceRow(Base):
    """How one enrollment's VM proved its identity (``contracts.evidence``), written by EnrollVm
    when it ends enrolled, whether or not ComplianceSync has seen the managed instance yet.

    ComplianceSync never touches it; reads join it to an instance by managed instance id, else by
    provider and instance key (the newest verification first). Never erased (audit).
    """

    __tablename__ = "enrollment_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(String(512))
    run_id: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(16))
    instance_key: Mapped[str] = mapped_column(NAME)
    cloud_account: Mapped[str | None] = mapped_column(NAME)
    customer: Mapped[str | None] = mapped_column(NAME)
    systems_account: Mapped[str | None] = mapped_column(String(32))
    managed_instance_id: Mapped[str | None] = mapped_column(ID)
    patch_group: Mapped[str | None] = mapped_column(String(64))
    key_kind: Mapped[str | None] = mapped_column(String(32))
    key_id: Mapped[str | None] = mapped_column(String(255))
    identity_sha256: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("workflow_id", "run_id"),
        Index(None, "provider", "instance_key", "verified_at"),
        Index(None, "managed_instance_id"),
    )

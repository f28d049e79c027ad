"""Queries the API calls. Every one takes a ``Scope`` and filters every statement by it.

A customer scope adds ``customer = <its customer>`` to each query, on top of whatever filters the
caller passes, so a filter can narrow what a customer sees and never widen it. Departed
instances are left out of counts and lists unless asked for; their detail page stays readable.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
import re
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from contracts.estate import EXPOSED_STATES, BaselineRecord, Compliance, PatchRecord, SoftwareItem
from estate import evidence as evidence_store
from estate.results import (
    GROUP_KEYS,
    ComplianceGroup,
    ComplianceReport,
    Counters,
    CveExposure,
    Enrollment,
    Evidence,
    ExposureGroup,
    InstanceDetail,
    InstanceFilters,
    InstancePage,
    InstanceRow,
    Scope,
    TrendPoint,
    WindowRun,
)
from estate.schema import Baseline, ComplianceAggregate, Instance, Patch, PatchCve, Software, WindowRunRow, counter_columns

MAX_LIMIT = 1000
MAX_TREND_DAYS = 366
WINDOWS_SHOWN = 20
CVE_ID = re.compile(r"^CVE-\d{4}-\d{4,7}$")
_GROUP_COLUMNS = {
    "customer": Instance.customer,
    "provider": Instance.provider,
    "patch_group": Instance.patch_group,
    "systems_account": Instance.systems_account,
    "os": Instance.os_name,
}
_COUNTERS = ("instances", "compliant", "non_compliant", "unknown", "missing", "failed", "critical_missing")


class InvalidQuery(ValueError):
    """A bad read argument; ``field`` names it (the API answers 400 naming the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _in_scope(column: Any, scope: Scope) -> ColumnElement[bool]:
    """The one condition that keeps a customer to its own rows (true for an admin)."""
    if scope.admin:
        return and_(True)
    return column == scope.customer


def _present(scope: Scope) -> list[ColumnElement[bool]]:
    return [_in_scope(Instance.customer, scope), Instance.departed_at.is_(None)]


def _counters(row: Any) -> Counters:
    return Counters(**{name: int(row[name] or 0) for name in _COUNTERS})


def compliance(session: Session, scope: Scope, group_by: list[str]) -> ComplianceReport:
    """Compliance counters per group (keys among ``GROUP_KEYS``) and in total, for the scope."""
    unknown = [key for key in group_by if key not in _GROUP_COLUMNS]
    if unknown or len(set(group_by)) != len(group_by):
        raise InvalidQuery("group_by", f"each of {', '.join(GROUP_KEYS)} at most once")
    columns = [_GROUP_COLUMNS[key].label(key) for key in group_by]
    query = (
        select(*columns, *counter_columns(), func.max(Instance.synced_at).label("as_of"))
        .where(*_present(scope))
        .group_by(*columns)
        .order_by(*columns)
    )
    groups, totals, as_of = [], Counters(), None
    for row in session.execute(query).mappings():
        counters = _counters(row)
        if counters.instances == 0:
            continue
        if group_by:
            groups.append(ComplianceGroup(keys={key: row[key] for key in group_by}, counters=counters))
        for name in _COUNTERS:
            setattr(totals, name, getattr(totals, name) + getattr(counters, name))
        if row["as_of"] is not None:
            as_of = row["as_of"] if as_of is None else max(as_of, row["as_of"])
    return ComplianceReport(as_of=as_of, group_by=list(group_by), groups=groups, totals=totals,
                            held_os=held_os(session, scope))


def held_os(session: Session, scope: Scope) -> dict[str, list[str]]:
    """Per customer, the OS families its later rings hold: present instances whose newest
    later-ring window run only scanned them because no early instance of that OS exists in the
    customer's estate (Ubuntu, Debian). An instance that departs, or a later run that installs a
    train for it, lifts the hold."""
    newest = (
        select(func.max(WindowRunRow.id).label("id"))
        .where(WindowRunRow.patch_group != "early")
        .group_by(WindowRunRow.managed_instance_id)
        .subquery()
    )
    query = (
        select(Instance.customer, WindowRunRow.os)
        .join(WindowRunRow, WindowRunRow.managed_instance_id == Instance.managed_instance_id)
        .join(newest, newest.c.id == WindowRunRow.id)
        .where(*_present(scope), WindowRunRow.held.is_(True), Instance.customer.is_not(None))
        .distinct()
    )
    found: dict[str, set[str]] = defaultdict(set)
    for customer, os in session.execute(query):
        found[customer].add(os or "unknown")
    return {customer: sorted(oses) for customer, oses in sorted(found.items())}


def _row(instance: Instance) -> InstanceRow:
    return InstanceRow(
        **{name: getattr(instance, name) for name in InstanceRow.__dataclass_fields__ if name != "updated_at"},
        updated_at=instance.synced_at,
    )


def _exposed_to(cve: str) -> Select[Any]:
    return select(PatchCve.instance_id).where(PatchCve.cve_id == cve, PatchCve.state.in_(EXPOSED_STATES))


def _filtered(scope: Scope, filters: InstanceFilters) -> Select[tuple[Instance]]:
    query = select(Instance).where(_in_scope(Instance.customer, scope))
    if not filters.include_departed:
        query = query.where(Instance.departed_at.is_(None))
    for name, column in (("customer", Instance.customer), ("provider", Instance.provider),
                         ("patch_group", Instance.patch_group), ("systems_account", Instance.systems_account),
                         ("os", Instance.os_name)):
        value = getattr(filters, name)
        if value is not None:
            query = query.where(column == value)
    if filters.compliance is not None:
        if filters.compliance not in {c.value for c in Compliance}:
            raise InvalidQuery("compliance", f"one of {', '.join(c.value for c in Compliance)}")
        query = query.where(Instance.compliance == filters.compliance)
    if filters.cve is not None:
        query = query.where(Instance.id.in_(_exposed_to(_cve(filters.cve, "cve"))))
    return query


#: A page's cursor, the position after its last row: ``{id}`` in the id order, ``{rank}.{id}`` in the
#: failing-first order. It carries its order: a page continues the listing its cursor came from. Any
#: string of this shape is a position (the API's document states the pattern); others are a 400.
CURSOR = r"^(?:[0-9]{1,5}\.)?[A-Za-z0-9-]{1,64}$"


def encode_cursor(order: str, key: list[Any]) -> str:
    return f"{key[0]}.{key[1]}" if order == "failing" else str(key[0])


def decode_cursor(cursor: str) -> tuple[str, list[Any]]:
    """The order and key a cursor names."""
    if not re.fullmatch(CURSOR, cursor):
        raise InvalidQuery("cursor", "not a cursor of this listing")
    rank, dot, managed_instance_id = cursor.rpartition(".")
    return ("failing", [int(rank), managed_instance_id]) if dot else ("id", [managed_instance_id])


def list_instances(
    session: Session, scope: Scope, filters: InstanceFilters | None = None, limit: int = 100, cursor: str | None = None
) -> InstancePage:
    """One page of instances in the scope, keyset-paginated (``next_cursor`` is opaque)."""
    filters = filters or InstanceFilters()
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery("limit", f"between 1 and {MAX_LIMIT}")
    order, key = decode_cursor(cursor) if cursor else ("failing" if filters.failing_first else "id", None)
    query = _filtered(scope, filters)
    if order == "failing":
        query = query.order_by(Instance.compliance_rank, Instance.managed_instance_id)
    else:
        query = query.order_by(Instance.managed_instance_id)
    if key:
        after_id = Instance.managed_instance_id > key[-1]
        if order == "failing":
            rank = Instance.compliance_rank
            after_id = or_(rank > key[0], and_(rank == key[0], after_id))
        query = query.where(after_id)
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        key = [last.compliance_rank, last.managed_instance_id] if order == "failing" else [last.managed_instance_id]
        next_cursor = encode_cursor(order, key)
    return InstancePage(instances=[_row(r) for r in rows], next_cursor=next_cursor)


def _patches(session: Session, instance: Instance) -> list[PatchRecord]:
    patches = list(session.scalars(select(Patch).where(Patch.instance_id == instance.id).order_by(Patch.state, Patch.kb_id)))
    cves: dict[int, list[str]] = defaultdict(list)
    for patch_id, cve in session.execute(
        select(PatchCve.patch_id, PatchCve.cve_id).where(PatchCve.instance_id == instance.id).order_by(PatchCve.cve_id)
    ):
        cves[patch_id].append(cve)
    return [
        PatchRecord(
            managed_instance_id=instance.managed_instance_id, title=p.title, kb_id=p.kb_id, state=p.state,
            classification=p.classification, severity=p.severity, cve_ids=cves.get(p.id, []),
            installed_time=p.installed_time,
        )
        for p in patches
    ]


def _inventory(session: Session, instance: Instance) -> list[SoftwareItem]:
    query = select(Software).where(Software.instance_id == instance.id).order_by(Software.name, Software.version)
    return [
        SoftwareItem(managed_instance_id=instance.managed_instance_id, name=s.name, version=s.version,
                     publisher=s.publisher, architecture=s.architecture)
        for s in session.scalars(query)
    ]


def _windows(session: Session, instance: Instance) -> list[WindowRun]:
    query = (
        select(WindowRunRow)
        .where(WindowRunRow.managed_instance_id == instance.managed_instance_id)
        .order_by(WindowRunRow.ended.desc(), WindowRunRow.id.desc())
        .limit(WINDOWS_SHOWN)
    )
    return [
        WindowRun(window_workflow_id=w.window_workflow_id, run_id=w.run_id, patch_group=w.patch_group,
                  status=w.status, outcome=w.outcome, installed=w.installed, missing=w.missing,
                  failed=w.failed, ended=w.ended)
        for w in session.scalars(query)
    ]


def _baseline(session: Session, instance: Instance) -> BaselineRecord | None:
    if instance.baseline_id is None:
        return None
    row = session.get(Baseline, (instance.systems_account, instance.baseline_id))
    if row is None:
        return BaselineRecord(baseline_id=instance.baseline_id, name=instance.baseline_id)
    return BaselineRecord(baseline_id=row.baseline_id, name=row.name, operating_system=row.operating_system,
                          approval_rule=row.approval_rule, patch_group=row.patch_group)


def _evidence(session: Session, instance: Instance) -> tuple[Evidence, Enrollment]:
    """The enrollment's recorded evidence (``estate.evidence``), else what the instance row holds."""
    found = evidence_store.for_instance(session, instance)
    if found is not None:
        return (Evidence(provider=found.provider, key_id=found.key_id, digest=found.identity_sha256,
                         verified_at=found.verified_at, key_kind=found.key_kind),
                Enrollment(workflow_id=found.workflow_id, run_id=found.run_id))
    return (Evidence(provider=instance.evidence_provider, key_id=instance.evidence_key_id,
                     digest=instance.evidence_digest, verified_at=instance.evidence_at),
            Enrollment(workflow_id=instance.workflow_id, run_id=instance.workflow_run_id))


def instance_detail(session: Session, scope: Scope, managed_instance_id: str) -> InstanceDetail | None:
    """The audit chain of one instance: row, evidence, enrollment, baseline, patches, inventory, windows."""
    query = select(Instance).where(
        Instance.managed_instance_id == managed_instance_id, _in_scope(Instance.customer, scope)
    )
    instance = session.scalars(query).one_or_none()
    if instance is None:
        return None
    evidence, enrollment = _evidence(session, instance)
    return InstanceDetail(
        instance=_row(instance),
        evidence=evidence,
        enrollment=enrollment,
        baseline=_baseline(session, instance),
        patches=_patches(session, instance),
        inventory=_inventory(session, instance),
        windows=_windows(session, instance),
    )


def _cve(value: str, field: str) -> str:
    cve = value.strip().upper()
    if not CVE_ID.match(cve):
        raise InvalidQuery(field, "a CVE id like CVE-2024-12345")
    return cve


def cve_exposure(session: Session, scope: Scope, cve_id: str) -> CveExposure:
    """Every present instance still exposed to ``cve_id`` (patch missing or failed), by customer and provider."""
    cve = _cve(cve_id, "cve_id")
    query = (
        select(Instance.customer, Instance.provider, Instance.managed_instance_id)
        .where(Instance.id.in_(_exposed_to(cve)), *_present(scope))
        .order_by(Instance.customer, Instance.provider, Instance.managed_instance_id)
    )
    groups: dict[tuple[str | None, str | None], list[str]] = defaultdict(list)
    for customer, provider, mid in session.execute(query):
        groups[(customer, provider)].append(mid)
    return CveExposure(
        cve_id=cve,
        instances=sum(len(ids) for ids in groups.values()),
        groups=[ExposureGroup(customer=c, provider=p, instances=ids) for (c, p), ids in groups.items()],
    )


def trend(
    session: Session, scope: Scope, days: int = 30, customer: str | None = None, now: datetime | None = None
) -> list[TrendPoint]:
    """The compliance aggregates of the last ``days`` days, summed per point in time, oldest first."""
    if not 1 <= days <= MAX_TREND_DAYS:
        raise InvalidQuery("days", f"between 1 and {MAX_TREND_DAYS}")
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    table = ComplianceAggregate
    sums = [func.sum(getattr(table, name)).label(name) for name in _COUNTERS]
    query = select(table.at, *sums).where(table.at >= since, _in_scope(table.customer, scope))
    if customer is not None:
        query = query.where(table.customer == customer)
    query = query.group_by(table.at).order_by(table.at)
    shown = customer if customer is not None else scope.customer
    return [
        TrendPoint(at=row["at"], customer=shown, counters=_counters(row))
        for row in session.execute(query).mappings()
    ]

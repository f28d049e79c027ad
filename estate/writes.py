"""The only functions that write the estate store; activities call them, nothing else does.

Each function works inside the caller's session and transaction (``estate.db.transaction``): a
snapshot lands whole or not at all. ComplianceSync applies an account in parts, one transaction
each, and marks departures only once every part has landed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import fields
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from contracts.estate import (
    CRITICAL,
    EXPOSED_STATES,
    AccountSnapshot,
    ApplyResult,
    Compliance,
    InstanceSnapshot,
    PatchRecord,
    WindowRunRecord,
    compliance_of,
)
from estate.schema import (
    Baseline,
    ComplianceAggregate,
    Instance,
    Patch,
    PatchCve,
    Software,
    WindowRunRow,
    counter_columns,
)

RANK = {Compliance.NON_COMPLIANT: 0, Compliance.UNKNOWN: 1, Compliance.COMPLIANT: 2}
DEPART_CHUNK = 500  # ids per UPDATE (SQLite's bound parameters)
_COPIED = [f.name for f in fields(InstanceSnapshot)]  # each one is an ``instances`` column (a test holds it)


def _set_compliance(row: Instance) -> None:
    state = compliance_of(row.operation, row.missing, row.failed)
    row.compliance = state.value
    row.compliance_rank = RANK[state]


def _critical(patches: list[PatchRecord]) -> int:
    return sum(1 for p in patches if p.severity == CRITICAL and p.state in EXPOSED_STATES)


def _check(snapshot: AccountSnapshot) -> None:
    if snapshot.taken_at.tzinfo is None:
        raise ValueError("taken_at must be timezone-aware")
    for item in snapshot.instances:
        if item.systems_account != snapshot.systems_account:
            raise ValueError(f"instance {item.managed_instance_id} is not in {snapshot.systems_account}")


def _upsert_instances(session: Session, snapshot: AccountSnapshot, result: ApplyResult) -> dict[str, Instance]:
    wanted = {item.managed_instance_id: item for item in snapshot.instances}
    existing = {
        row.managed_instance_id: row
        for row in session.scalars(select(Instance).where(Instance.managed_instance_id.in_(list(wanted))))
    } if wanted else {}
    for mid, item in wanted.items():
        row = existing.get(mid)
        if row is None:
            row = Instance(first_seen_at=snapshot.taken_at)
            session.add(row)
            existing[mid] = row
            result.new += 1
        elif row.departed_at is not None:
            result.returned += 1
        for name in _COPIED:
            setattr(row, name, getattr(item, name))
        row.departed_at = None
        row.synced_at = snapshot.taken_at
        _set_compliance(row)
    result.instances += len(wanted)
    return existing


def mark_departed(session: Session, systems_account: str, taken_at: datetime, present: set[str]) -> int:
    """Mark the account's instances that a sync at ``taken_at`` did not find departed (ids only
    are loaded, and rows updated in chunks, so an account of any size costs a set of ids)."""
    query = select(Instance.managed_instance_id).where(
        Instance.systems_account == systems_account, Instance.departed_at.is_(None)
    )
    gone = sorted(mid for mid in session.scalars(query) if mid not in present)
    for start in range(0, len(gone), DEPART_CHUNK):
        session.execute(update(Instance).where(Instance.managed_instance_id.in_(gone[start:start + DEPART_CHUNK]))
                        .values(departed_at=taken_at))
    return len(gone)


def _replace_patches(session: Session, rows: dict[str, Instance], snapshot: AccountSnapshot) -> int:
    by_instance: dict[str, list[PatchRecord]] = defaultdict(list)
    for patch in snapshot.patches:
        if patch.managed_instance_id in rows:
            by_instance[patch.managed_instance_id].append(patch)
    ids = [row.id for row in rows.values()]
    session.execute(delete(PatchCve).where(PatchCve.instance_id.in_(ids)))
    session.execute(delete(Patch).where(Patch.instance_id.in_(ids)))
    pending: list[tuple[Patch, PatchRecord]] = []
    for mid, row in rows.items():
        patches = by_instance.get(mid, [])
        row.critical_missing = _critical(patches)
        for record in patches:
            patch = Patch(
                instance_id=row.id, title=record.title, kb_id=record.kb_id, state=record.state,
                classification=record.classification, severity=record.severity,
                installed_time=record.installed_time,
            )
            pending.append((patch, record))
    session.add_all([patch for patch, _ in pending])
    session.flush()
    session.add_all([
        PatchCve(patch_id=patch.id, cve_id=cve, instance_id=patch.instance_id, state=patch.state)
        for patch, record in pending
        for cve in sorted({c.strip().upper() for c in record.cve_ids if c.strip()})
    ])
    return len(pending)


def _replace_software(session: Session, rows: dict[str, Instance], snapshot: AccountSnapshot) -> int:
    ids = [row.id for row in rows.values()]
    session.execute(delete(Software).where(Software.instance_id.in_(ids)))
    count = 0
    for item in snapshot.software:
        row = rows.get(item.managed_instance_id)
        if row is None:
            continue
        session.add(Software(
            instance_id=row.id, name=item.name, version=item.version,
            publisher=item.publisher, architecture=item.architecture,
        ))
        count += 1
    return count


def _upsert_baselines(session: Session, snapshot: AccountSnapshot) -> None:
    for record in snapshot.baselines:
        row = session.get(Baseline, (snapshot.systems_account, record.baseline_id))
        if row is None:
            row = Baseline(systems_account=snapshot.systems_account, baseline_id=record.baseline_id)
            session.add(row)
        row.name = record.name
        row.operating_system = record.operating_system
        row.approval_rule = record.approval_rule
        row.patch_group = record.patch_group
        row.synced_at = snapshot.taken_at


def apply_account_part(session: Session, snapshot: AccountSnapshot, result: ApplyResult) -> set[str]:
    """Upsert the rows of some of an account's instances (their patches and software replaced),
    add their counts to ``result``; return their ids. Departures are ``mark_departed``'s."""
    _check(snapshot)
    rows = _upsert_instances(session, snapshot, result)
    session.flush()
    result.patches += _replace_patches(session, rows, snapshot)
    result.software += _replace_software(session, rows, snapshot)
    _upsert_baselines(session, snapshot)
    session.flush()
    return set(rows)


def apply_account_snapshot(session: Session, snapshot: AccountSnapshot) -> ApplyResult:
    """Upsert every row of one systems account; mark its instances absent from the snapshot departed."""
    result = ApplyResult(systems_account=snapshot.systems_account)
    present = apply_account_part(session, snapshot, result)
    result.departed = mark_departed(session, snapshot.systems_account, snapshot.taken_at, present)
    session.flush()
    return result


def _follow_window(row: Instance, run: WindowRunRecord) -> None:
    """A window's result is the instance's newest patch state when it ended after the last one."""
    if run.ended is None or (row.operation_end is not None and run.ended <= row.operation_end):
        return
    row.installed, row.missing, row.failed = run.installed, run.missing, run.failed
    row.operation, row.operation_end = "Install", run.ended
    row.baseline_id = run.baseline_id or row.baseline_id  # shown before the next ComplianceSync
    if run.missing + run.failed == 0:
        row.critical_missing = 0
    row.synced_at = max(row.synced_at, run.ended)
    _set_compliance(row)


def record_window_runs(session: Session, runs: list[WindowRunRecord]) -> int:
    """Record each instance's result in a PatchWindow run (idempotent per run and instance)."""
    if not runs:
        return 0
    now = datetime.now(UTC)
    keys = {(run.run_id, run.managed_instance_id) for run in runs}
    have = {
        (row.run_id, row.managed_instance_id): row
        for row in session.scalars(select(WindowRunRow).where(WindowRunRow.run_id.in_({k[0] for k in keys})))
    }
    instances = {
        row.managed_instance_id: row
        for row in session.scalars(select(Instance).where(Instance.managed_instance_id.in_({k[1] for k in keys})))
    }
    for run in runs:
        row = have.get((run.run_id, run.managed_instance_id))
        if row is None:
            row = WindowRunRow(run_id=run.run_id, managed_instance_id=run.managed_instance_id, recorded_at=now)
            session.add(row)
            have[(run.run_id, run.managed_instance_id)] = row
        for name in ("window_workflow_id", "systems_account", "patch_group", "status", "outcome",
                     "installed", "missing", "failed", "ended", "os", "held"):
            setattr(row, name, getattr(run, name))
        if run.managed_instance_id in instances:
            _follow_window(instances[run.managed_instance_id], run)
    session.flush()
    return len(keys)


def record_aggregates(session: Session, at: datetime) -> int:
    """Write one compliance aggregate row per customer, provider and patch group at ``at``."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    keys = [Instance.customer, Instance.provider, Instance.patch_group]
    query = select(*keys, *counter_columns()).where(Instance.departed_at.is_(None)).group_by(*keys)
    count = 0
    for row in session.execute(query).mappings():
        session.add(ComplianceAggregate(at=at, **dict(row)))
        count += 1
    session.flush()
    return count

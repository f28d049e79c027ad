"""Writes: snapshots upsert and mark departures, window runs follow the newest result, aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from contracts.estate import (
    AccountSnapshot,
    BaselineRecord,
    InstanceSnapshot,
    PatchRecord,
    SoftwareItem,
    WindowRunRecord,
)
from estate import db, reads, writes
from estate.results import Scope
from estate.schema import ComplianceAggregate, Patch, PatchCve, Software

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ACCOUNT = "111111111111"
ADMIN = Scope.everything()


def instance(mid: str, customer: str = "acme", account: str = ACCOUNT, **state: object) -> InstanceSnapshot:
    return InstanceSnapshot(
        managed_instance_id=mid, systems_account=account, customer=customer, provider="gcp",
        instance_key=f"proj/{mid}", cloud_account="proj", patch_group="early", os_name="Ubuntu",
        os_version="22.04", agent_version="3.3.0", ping_status="Online", last_seen=T0,
        workflow_id=f"enroll/gcp/proj/{mid}", workflow_run_id="run-1", evidence_provider="gcp",
        evidence_key_id="kid-1", evidence_digest="ab" * 32, evidence_at=T0, **state,
    )


def scanned(missing: int = 0, failed: int = 0, installed: int = 5) -> dict[str, object]:
    return {"operation": "Scan", "operation_end": T0, "missing": missing, "failed": failed,
            "installed": installed, "baseline_id": "pb-ubuntu-early"}


def test_every_snapshot_field_has_a_column_and_the_migrations_match_the_models(estate_url: str) -> None:
    from dataclasses import fields

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from estate.schema import Base, Instance

    assert {f.name for f in fields(InstanceSnapshot)} <= set(Instance.__table__.c.keys())
    db.upgrade(estate_url)
    engine = db.make_engine(estate_url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


def test_migrations_reach_head_and_are_idempotent(estate_url: str) -> None:
    from alembic.script import ScriptDirectory

    db.upgrade(estate_url)
    db.upgrade(estate_url)
    head = ScriptDirectory.from_config(db.alembic_config(estate_url)).get_current_head()  # one head: a chain
    assert head is not None and db.current_revision(estate_url) == head


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_snapshot_upserts_and_computes_compliance(sessions) -> None:
    snap = AccountSnapshot(ACCOUNT, T0, instances=[
        instance("mi-a", **scanned()),
        instance("mi-b", **scanned(missing=2)),
        instance("mi-c"),
    ], patches=[
        PatchRecord("mi-b", "OpenSSL fix", "openssl", "Missing", "Security", "Critical", ["cve-2024-0001", "CVE-2024-0002"]),
        PatchRecord("mi-b", "zlib", "zlib1g", "Missing", "Security", "Medium", ["CVE-2024-0003"]),
        PatchRecord("mi-a", "curl", "curl", "Installed", "Security", "Critical", ["CVE-2024-0004"]),
    ], software=[SoftwareItem("mi-a", "nginx", "1.24", "Ubuntu")],
       baselines=[BaselineRecord("pb-ubuntu-early", "fleetpatch-ubuntu-early", "UBUNTU", "approve after 0 days")])
    with db.transaction(sessions) as session:
        result = writes.apply_account_snapshot(session, snap)
    assert (result.instances, result.new, result.departed, result.patches, result.software) == (3, 3, 0, 3, 1)
    with sessions() as session:
        rows = {r.managed_instance_id: r for r in reads.list_instances(session, ADMIN).instances}
        assert {k: v.compliance for k, v in rows.items()} == {"mi-a": "compliant", "mi-b": "non_compliant", "mi-c": "unknown"}
        assert rows["mi-b"].critical_missing == 1 and rows["mi-a"].critical_missing == 0
        assert session.scalar(select(func.count()).select_from(PatchCve)) == 4
        detail = reads.instance_detail(session, ADMIN, "mi-b")
        assert detail is not None
        assert sorted(p.kb_id for p in detail.patches) == ["openssl", "zlib1g"]
        assert {tuple(p.cve_ids) for p in detail.patches} == {("CVE-2024-0001", "CVE-2024-0002"), ("CVE-2024-0003",)}
        assert detail.baseline is not None and detail.baseline.name == "fleetpatch-ubuntu-early"
        assert detail.evidence.key_id == "kid-1" and detail.evidence.verified_at == T0
        assert detail.enrollment.workflow_id == "enroll/gcp/proj/mi-b"
        assert reads.instance_detail(session, ADMIN, "mi-a").inventory[0].name == "nginx"


def test_second_snapshot_replaces_lists_marks_departed_and_returns(sessions) -> None:
    first = AccountSnapshot(ACCOUNT, T0, instances=[instance("mi-a", **scanned(missing=1)), instance("mi-b")],
                            patches=[PatchRecord("mi-a", "p", "p1", "Missing", cve_ids=["CVE-2024-1111"])],
                            software=[SoftwareItem("mi-a", "old", "1")])
    later = T0 + timedelta(minutes=15)
    second = AccountSnapshot(ACCOUNT, later, instances=[instance("mi-a", **scanned())],
                             patches=[PatchRecord("mi-a", "p", "p1", "Installed", cve_ids=["CVE-2024-1111"])])
    with db.transaction(sessions) as session:
        writes.apply_account_snapshot(session, first)
    with db.transaction(sessions) as session:
        result = writes.apply_account_snapshot(session, second)
    assert (result.new, result.departed) == (0, 1)
    with sessions() as session:
        assert [r.managed_instance_id for r in reads.list_instances(session, ADMIN).instances] == ["mi-a"]
        everything = reads.list_instances(session, ADMIN, reads.InstanceFilters(include_departed=True)).instances
        departed = {r.managed_instance_id: r.departed_at for r in everything}
        assert departed == {"mi-a": None, "mi-b": later}
        assert reads.instance_detail(session, ADMIN, "mi-b") is not None  # kept for the audit trail
        assert session.scalar(select(func.count()).select_from(Patch)) == 1
        assert session.scalar(select(func.count()).select_from(Software)) == 0
        assert reads.cve_exposure(session, ADMIN, "CVE-2024-1111").instances == 0
        report = reads.compliance(session, ADMIN, [])
        assert (report.totals.instances, report.totals.compliant, report.as_of) == (1, 1, later)
    with db.transaction(sessions) as session:
        back = writes.apply_account_snapshot(session, AccountSnapshot(ACCOUNT, later + timedelta(minutes=15),
                                                                       instances=[instance("mi-a"), instance("mi-b")]))
    assert (back.returned, back.new, back.departed) == (1, 0, 0)


def test_snapshot_of_one_account_leaves_other_accounts_alone(sessions) -> None:
    with db.transaction(sessions) as session:
        writes.apply_account_snapshot(session, AccountSnapshot("222222222222", T0, [instance("mi-x", account="222222222222")]))
        writes.apply_account_snapshot(session, AccountSnapshot(ACCOUNT, T0, []))
    with sessions() as session:
        assert [r.managed_instance_id for r in reads.list_instances(session, ADMIN).instances] == ["mi-x"]


def test_snapshot_refuses_foreign_instances_and_naive_times(sessions) -> None:
    with db.transaction(sessions) as session, pytest.raises(ValueError, match="not in"):
        writes.apply_account_snapshot(session, AccountSnapshot(ACCOUNT, T0, [instance("mi-a", account="9" * 12)]))
    with db.transaction(sessions) as session, pytest.raises(ValueError, match="timezone"):
        writes.apply_account_snapshot(session, AccountSnapshot(ACCOUNT, T0.replace(tzinfo=None), []))


def test_window_runs_are_idempotent_and_follow_only_newer_results(sessions) -> None:
    with db.transaction(sessions) as session:
        writes.apply_account_snapshot(session, AccountSnapshot(ACCOUNT, T0, [instance("mi-a", **scanned(missing=3))],
            patches=[PatchRecord("mi-a", "k", "k", "Missing", severity="Critical")]))
    run = WindowRunRecord("patch-window/111111111111/early/x", "run-7", ACCOUNT, "early", "mi-a", "Success",
                          "succeeded", installed=8, missing=0, failed=0, ended=T0 + timedelta(hours=1))
    stale = WindowRunRecord("patch-window/111111111111/early/y", "run-6", ACCOUNT, "early", "mi-a", "Failed",
                            "failed", installed=5, missing=1, failed=2, ended=T0 - timedelta(hours=1))
    unknown = WindowRunRecord("w", "run-7", ACCOUNT, "early", "mi-gone", "Success", ended=T0)
    with db.transaction(sessions) as session:
        assert writes.record_window_runs(session, [run, stale, unknown]) == 3
    with db.transaction(sessions) as session:
        assert writes.record_window_runs(session, [run]) == 1
    with sessions() as session:
        detail = reads.instance_detail(session, ADMIN, "mi-a")
        assert detail is not None
        row = detail.instance
        assert (row.compliance, row.installed, row.missing, row.critical_missing) == ("compliant", 8, 0, 0)
        assert (row.operation, row.operation_end) == ("Install", T0 + timedelta(hours=1))
        assert [w.run_id for w in detail.windows] == ["run-7", "run-6"]
        assert detail.windows[0].outcome == "succeeded"


def test_a_window_run_gives_the_instance_its_baseline_before_the_next_sync(sessions) -> None:
    """An instance synced before its first scan has no baseline; the window's patch state names the
    one it was patched with, and `instances show` has it before the next ComplianceSync."""
    with db.transaction(sessions) as session:
        writes.apply_account_snapshot(session, AccountSnapshot(ACCOUNT, T0, [instance("mi-a")]))
    with sessions() as session:
        assert reads.instance_detail(session, ADMIN, "mi-a").baseline is None
    run = WindowRunRecord("patch-window/111111111111/early/x", "run-8", ACCOUNT, "early", "mi-a", "Success",
                          "succeeded", installed=3, ended=T0 + timedelta(hours=1), baseline_id="pb-0123456789abcdef0")
    with db.transaction(sessions) as session:
        writes.record_window_runs(session, [run])
    with sessions() as session:
        detail = reads.instance_detail(session, ADMIN, "mi-a")
        assert detail.instance.baseline_id == "pb-0123456789abcdef0"
        assert detail.baseline is not None and detail.baseline.baseline_id == "pb-0123456789abcdef0"
    # A later run without a state (not reached) keeps the known baseline.
    later = WindowRunRecord("patch-window/111111111111/early/y", "run-9", ACCOUNT, "early", "mi-a", "Success",
                            "succeeded", installed=3, ended=T0 + timedelta(hours=2))
    with db.transaction(sessions) as session:
        writes.record_window_runs(session, [later])
    with sessions() as session:
        assert reads.instance_detail(session, ADMIN, "mi-a").instance.baseline_id == "pb-0123456789abcdef0"


def test_aggregates_feed_the_trend(sessions) -> None:
    with db.transaction(sessions) as session:
        writes.apply_account_snapshot(session, AccountSnapshot(ACCOUNT, T0, [
            instance("mi-a", **scanned()), instance("mi-b", **scanned(failed=1)),
            instance("mi-c", customer="globex"),
        ]))
        assert writes.record_aggregates(session, T0) == 2
        writes.apply_account_snapshot(session, AccountSnapshot(ACCOUNT, T0 + timedelta(days=1), [
            instance("mi-a", **scanned()), instance("mi-b", **scanned()), instance("mi-c", customer="globex"),
        ]))
        writes.record_aggregates(session, T0 + timedelta(days=1))
        assert session.scalar(select(func.count()).select_from(ComplianceAggregate)) == 4
    with sessions() as session:
        points = reads.trend(session, ADMIN, days=30, now=T0 + timedelta(days=2))
        assert [(p.at, p.counters.instances, p.counters.compliant, p.counters.non_compliant) for p in points] == [
            (T0, 3, 1, 1), (T0 + timedelta(days=1), 3, 2, 0)]
        acme = reads.trend(session, Scope.of_customer("acme"), days=30, now=T0 + timedelta(days=2))
        assert [p.counters.instances for p in acme] == [2, 2] and acme[0].customer == "acme"
        globex = reads.trend(session, ADMIN, days=30, customer="globex", now=T0 + timedelta(days=2))
        assert [p.counters.unknown for p in globex] == [1, 1]
        assert reads.trend(session, ADMIN, days=1, now=T0 + timedelta(days=3)) == []

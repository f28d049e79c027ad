"""The compliance view's held OSes: per customer, from each present instance's newest later-ring
window run (issue 14: "held: no early instance of this OS")."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from contracts.estate import AccountSnapshot, InstanceSnapshot, WindowRunRecord
from estate import db, reads, writes
from estate.results import Scope
from tests.unit.estate.test_writes import ACCOUNT, ADMIN, T0, instance, scanned


def _run(mid: str, run_id: str, group: str, held: bool, os: str = "ubuntu") -> WindowRunRecord:
    return WindowRunRecord(f"patch-window/{ACCOUNT}/{group}/{run_id}", run_id, ACCOUNT, group, mid, "Success",
                           "succeeded", os=os, held=held)


def test_held_os_follows_the_newest_later_ring_run_of_present_instances(sessions) -> None:
    def later(mid: str, customer: str = "acme") -> InstanceSnapshot:
        return replace(instance(mid, customer, **scanned()), patch_group="on-time")

    rows = [later("mi-a"), later("mi-b"), later("mi-c"), later("mi-d", "globex"), instance("mi-e", **scanned())]
    with db.transaction(sessions) as session:
        writes.apply_account_snapshot(session, AccountSnapshot(ACCOUNT, T0, rows))
        writes.record_window_runs(session, [
            _run("mi-a", "r1", "on-time", True),  # held, and still so
            _run("mi-b", "r1", "on-time", True), _run("mi-b", "r2", "on-time", False),  # a train came
            _run("mi-c", "r1", "on-time", True, os="debian"),  # departs below
            _run("mi-d", "r3", "late", True, os="debian"),
            _run("mi-e", "r4", "early", True),  # early runs never hold
        ])
    with sessions() as session:
        assert reads.held_os(session, ADMIN) == {"acme": ["debian", "ubuntu"], "globex": ["debian"]}
        assert reads.held_os(session, Scope.of_customer("globex")) == {"globex": ["debian"]}
        assert reads.compliance(session, Scope.of_customer("acme"), []).held_os == {"acme": ["debian", "ubuntu"]}
    with db.transaction(sessions) as session:  # mi-c left SSM; mi-a's newest run installed a train
        writes.apply_account_snapshot(session, AccountSnapshot(ACCOUNT, T0 + timedelta(hours=1),
                                                               [r for r in rows if r.managed_instance_id != "mi-c"]))
        writes.record_window_runs(session, [_run("mi-a", "r5", "late", False)])
    with sessions() as session:
        assert reads.held_os(session, ADMIN) == {"globex": ["debian"]}

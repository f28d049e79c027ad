"""Reads: grouping, keyset pagination, filters, CVE exposure, and bad arguments named by field."""

from __future__ import annotations

import re

from datetime import UTC, datetime

import pytest

from contracts.estate import AccountSnapshot, InstanceSnapshot, PatchRecord
from estate import db, reads, writes
from estate.reads import InvalidQuery
from estate.results import InstanceFilters, Scope

T0 = datetime(2026, 11, 1, tzinfo=UTC)
ADMIN = Scope.everything()


def fleet() -> list[AccountSnapshot]:
    """Two customers over three accounts: 30 instances with a known mix of states."""
    snapshots = []
    for a, (account, customer, provider) in enumerate(
        [("100000000001", "acme", "gcp"), ("100000000002", "acme", "azure"), ("100000000003", "globex", "ec2")]
    ):
        instances, patches = [], []
        for i in range(10):
            mid = f"mi-{a}{i:02d}"
            state = i % 3  # 0 compliant, 1 non-compliant (missing), 2 unknown
            instances.append(InstanceSnapshot(
                managed_instance_id=mid, systems_account=account, customer=customer, provider=provider,
                patch_group=("early", "late")[i % 2], os_name=("Ubuntu", "Windows")[i % 2],
                operation=None if state == 2 else "Install", operation_end=None if state == 2 else T0,
                missing=1 if state == 1 else 0, installed=4,
            ))
            if state == 1:
                patches.append(PatchRecord(mid, "fix", "kb1", "Missing", severity="Critical" if i < 5 else "Low",
                                           cve_ids=["CVE-2021-44228"]))
        snapshots.append(AccountSnapshot(account, T0, instances, patches))
    return snapshots


@pytest.fixture
def loaded(sessions):
    with db.transaction(sessions) as session:
        for snapshot in fleet():
            writes.apply_account_snapshot(session, snapshot)
    with sessions() as session:
        yield session


def test_compliance_grouped_by_customer_and_provider(loaded) -> None:
    report = reads.compliance(loaded, ADMIN, ["customer", "provider"])
    got = {(g.keys["customer"], g.keys["provider"]): (g.counters.instances, g.counters.compliant,
           g.counters.non_compliant, g.counters.unknown, g.counters.missing, g.counters.critical_missing)
           for g in report.groups}
    # per account: i in 0..9 -> compliant {0,3,6,9}, missing {1,4,7} (critical when i<5: 1,4), unknown {2,5,8}
    assert got == {("acme", "azure"): (10, 4, 3, 3, 3, 2), ("acme", "gcp"): (10, 4, 3, 3, 3, 2),
                   ("globex", "ec2"): (10, 4, 3, 3, 3, 2)}
    assert (report.totals.instances, report.totals.non_compliant, report.totals.critical_missing) == (30, 9, 6)
    assert report.as_of == T0 and report.group_by == ["customer", "provider"]
    by_os = reads.compliance(loaded, Scope.of_customer("globex"), ["os", "patch_group"])
    assert {(g.keys["os"], g.keys["patch_group"]): g.counters.instances for g in by_os.groups} == {
        ("Ubuntu", "early"): 5, ("Windows", "late"): 5}


@pytest.mark.parametrize("group_by", [["tenant"], ["customer", "customer"], ["provider", "os;drop"]])
def test_bad_group_by_names_the_field(loaded, group_by) -> None:
    with pytest.raises(InvalidQuery) as caught:
        reads.compliance(loaded, ADMIN, group_by)
    assert caught.value.field == "group_by"


@pytest.mark.parametrize("failing_first", [False, True])
def test_keyset_pages_cover_everything_once_in_order(loaded, failing_first) -> None:
    seen, cursor = [], None
    filters = InstanceFilters(failing_first=failing_first)
    for _ in range(20):
        page = reads.list_instances(loaded, ADMIN, filters, limit=7, cursor=cursor)
        seen.extend(page.instances)
        cursor = page.next_cursor
        if cursor is None:
            break
    ids = [r.managed_instance_id for r in seen]
    assert len(ids) == 30 and len(set(ids)) == 30
    if failing_first:
        ranks = [{"non_compliant": 0, "unknown": 1, "compliant": 2}[r.compliance] for r in seen]
        assert ranks == sorted(ranks) and seen[0].compliance == "non_compliant"
    else:
        assert ids == sorted(ids)


def test_a_cursor_carries_its_order(loaded) -> None:
    """The next page continues the listing the cursor came from, whatever ``failing_first`` says now."""
    first = reads.list_instances(loaded, ADMIN, InstanceFilters(failing_first=True), limit=7)
    assert first.next_cursor and re.fullmatch(reads.CURSOR, first.next_cursor)
    again = reads.list_instances(loaded, ADMIN, InstanceFilters(failing_first=True), limit=7, cursor=first.next_cursor)
    plain = reads.list_instances(loaded, ADMIN, InstanceFilters(), limit=7, cursor=first.next_cursor)
    assert [r.managed_instance_id for r in plain.instances] == [r.managed_instance_id for r in again.instances]
    by_id = reads.list_instances(loaded, ADMIN, InstanceFilters(), limit=7)
    assert by_id.next_cursor == by_id.instances[-1].managed_instance_id


def test_filters_combine(loaded) -> None:
    def ids(scope: Scope, **kw: object) -> list[str]:
        return [r.managed_instance_id for r in reads.list_instances(loaded, scope, InstanceFilters(**kw)).instances]

    assert ids(ADMIN, provider="gcp", compliance="non_compliant") == ["mi-001", "mi-004", "mi-007"]
    assert ids(ADMIN, cve="cve-2021-44228", customer="globex") == ["mi-201", "mi-204", "mi-207"]
    assert ids(ADMIN, systems_account="100000000002", patch_group="early", os="Ubuntu") == [
        "mi-100", "mi-102", "mi-104", "mi-106", "mi-108"]
    assert ids(Scope.of_customer("acme"), customer="globex") == []  # a filter never widens a scope


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"cursor": "not a cursor"}, "cursor"),
    ({"cursor": "1.2.mi-1"}, "cursor"), ({"cursor": "eyJvIjoiaWQiLCJrIjpbIm1pLTEiXX0="}, "cursor"),
    ({"filters": InstanceFilters(compliance="bad")}, "compliance"),
    ({"filters": InstanceFilters(cve="log4shell")}, "cve"),
])
def test_bad_listing_arguments_name_the_field(loaded, kwargs, field) -> None:
    with pytest.raises(InvalidQuery) as caught:
        reads.list_instances(loaded, ADMIN, **kwargs)
    assert caught.value.field == field


def test_cve_exposure_groups_by_customer_and_provider(loaded) -> None:
    exposure = reads.cve_exposure(loaded, ADMIN, "cve-2021-44228")
    assert exposure.cve_id == "CVE-2021-44228" and exposure.instances == 9
    assert [(g.customer, g.provider, len(g.instances)) for g in exposure.groups] == [
        ("acme", "azure", 3), ("acme", "gcp", 3), ("globex", "ec2", 3)]
    assert reads.cve_exposure(loaded, Scope.of_customer("globex"), "CVE-2021-44228").instances == 3
    assert reads.cve_exposure(loaded, ADMIN, "CVE-1999-0001").groups == []
    with pytest.raises(InvalidQuery) as caught:
        reads.cve_exposure(loaded, ADMIN, "CVE-21-1")
    assert caught.value.field == "cve_id"


def test_trend_days_are_bounded(loaded) -> None:
    for days in (0, 367):
        with pytest.raises(InvalidQuery) as caught:
            reads.trend(loaded, ADMIN, days=days)
        assert caught.value.field == "days"


def test_scope_is_admin_or_one_customer() -> None:
    with pytest.raises(ValueError):
        Scope()
    with pytest.raises(ValueError):
        Scope(customer="acme", admin=True)
    with pytest.raises(ValueError):
        Scope.of_customer("")

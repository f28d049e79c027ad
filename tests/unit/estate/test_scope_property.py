"""Property: across random estates over several customers and random filters, a customer scope
never returns another customer's row from any read function, and returns all of its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.estate import AccountSnapshot, InstanceSnapshot, PatchRecord
from estate import db, reads, writes
from estate.results import GROUP_KEYS, InstanceFilters, Scope
from estate.schema import Base

T0 = datetime(2026, 11, 1, tzinfo=UTC)
CUSTOMERS = ["acme", "globex", "initech"]
PROVIDERS = ["gcp", "azure", "ec2", "vmware"]
GROUPS = ["early", "on-time", "late"]
CVES = ["CVE-2021-44228", "CVE-2023-4863", "CVE-2024-3094"]
ACCOUNTS = ["200000000001", "200000000002", "200000000003"]

instances = st.lists(
    st.fixed_dictionaries({
        "customer": st.sampled_from(CUSTOMERS), "provider": st.sampled_from(PROVIDERS),
        "patch_group": st.sampled_from(GROUPS), "account": st.sampled_from(ACCOUNTS),
        "state": st.sampled_from(["compliant", "non_compliant", "unknown"]),
        "cves": st.lists(st.sampled_from(CVES), max_size=2, unique=True),
        "departed": st.booleans(),
    }),
    max_size=24,
)
filters = st.builds(
    InstanceFilters,
    customer=st.none() | st.sampled_from(CUSTOMERS), provider=st.none() | st.sampled_from(PROVIDERS),
    patch_group=st.none() | st.sampled_from(GROUPS),
    compliance=st.none() | st.sampled_from(["compliant", "non_compliant", "unknown"]),
    cve=st.none() | st.sampled_from(CVES), include_departed=st.booleans(), failing_first=st.booleans(),
)


def _load(session, estate: list[dict]) -> None:
    for table in reversed(Base.metadata.sorted_tables):
        session.execute(table.delete())
    for account in ACCOUNTS:
        items, patches = [], []
        for n, vm in enumerate(estate):
            if vm["account"] != account:
                continue
            mid = f"mi-{n:03d}"
            scanned = vm["state"] != "unknown"
            missing = 1 if vm["state"] == "non_compliant" else 0
            items.append(InstanceSnapshot(managed_instance_id=mid, systems_account=account, customer=vm["customer"],
                                          provider=vm["provider"], patch_group=vm["patch_group"],
                                          operation="Scan" if scanned else None, missing=missing))
            patches.extend(PatchRecord(mid, cve, cve, "Missing" if missing else "Installed", cve_ids=[cve])
                           for cve in vm["cves"])
        writes.apply_account_snapshot(session, AccountSnapshot(account, T0, items, patches))
        gone = [i for i in items if estate[int(i.managed_instance_id[3:])]["departed"]]
        kept = [i for i in items if i not in gone]
        writes.apply_account_snapshot(session, AccountSnapshot(account, T0 + timedelta(hours=1), kept, [
            p for p in patches if any(p.managed_instance_id == i.managed_instance_id for i in kept)]))
    writes.record_aggregates(session, T0 + timedelta(hours=1))


def _expected(estate: list[dict], customer: str, f: InstanceFilters) -> set[str]:
    out = set()
    for n, vm in enumerate(estate):
        wanted = [
            vm["customer"] == customer, f.customer in (None, customer), f.provider in (None, vm["provider"]),
            f.patch_group in (None, vm["patch_group"]), f.compliance in (None, vm["state"]),
            f.cve is None or (f.cve in vm["cves"] and vm["state"] == "non_compliant"),
            f.include_departed or not vm["departed"],
        ]
        if all(wanted):
            out.add(f"mi-{n:03d}")
    return out


def _all_pages(session, scope: Scope, f: InstanceFilters, limit: int) -> list:
    rows, cursor = [], None
    while True:
        page = reads.list_instances(session, scope, f, limit=limit, cursor=cursor)
        rows.extend(page.instances)
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(estate=instances, customer=st.sampled_from(CUSTOMERS), f=filters, limit=st.integers(1, 5),
       group_by=st.lists(st.sampled_from(GROUP_KEYS), unique=True, max_size=3))
def test_customer_scope_never_leaks(sessions, estate, customer, f, limit, group_by) -> None:
    with db.transaction(sessions) as session:
        _load(session, estate)
    scope = Scope.of_customer(customer)
    present = [vm for vm in estate if vm["customer"] == customer and not vm["departed"]]
    with sessions() as session:
        rows = _all_pages(session, scope, f, limit)
        assert {r.customer for r in rows} <= {customer}
        assert {r.managed_instance_id for r in rows} == _expected(estate, customer, f)

        report = reads.compliance(session, scope, group_by)
        assert report.totals.instances == len(present)
        assert report.totals.non_compliant == sum(vm["state"] == "non_compliant" for vm in present)
        if "customer" in group_by:
            assert {g.keys["customer"] for g in report.groups} <= {customer}

        for cve in CVES:
            exposure = reads.cve_exposure(session, scope, cve)
            assert {g.customer for g in exposure.groups} <= {customer}
            assert exposure.instances == sum(cve in vm["cves"] and vm["state"] == "non_compliant" for vm in present)

        for n, vm in enumerate(estate):
            detail = reads.instance_detail(session, scope, f"mi-{n:03d}")
            assert (detail is not None) == (vm["customer"] == customer)

        points = reads.trend(session, scope, days=30, now=T0 + timedelta(days=1))
        assert sum(p.counters.instances for p in points) == len(present)
        other = next(c for c in CUSTOMERS if c != customer)
        assert sum(p.counters.instances for p in reads.trend(session, scope, 30, other, now=T0 + timedelta(days=1))) == 0

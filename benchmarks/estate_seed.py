"""A synthetic estate for benchmarks and load tests: N instances over M systems accounts.

Written through ``estate.writes.apply_account_snapshot`` (the real write path), deterministic for a
given seed, with a realistic mix: a third of the fleet missing patches, some failed, some not
scanned yet, a few well-known CVEs, and window runs and trend aggregates.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import random

from sqlalchemy.orm import Session, sessionmaker

from contracts.estate import AccountSnapshot, InstanceSnapshot, PatchRecord, SoftwareItem, WindowRunRecord
from estate import db, writes

PROVIDERS = ("gcp", "azure", "vmware", "ec2")
GROUPS = ("early", "on-time", "late")
OSES = (("Ubuntu", "22.04"), ("Windows Server 2022 Datacenter", "10.0.20348"), ("Red Hat Enterprise Linux", "9.4"),
        ("Amazon Linux", "2023"), ("Debian GNU/Linux", "12"))
CVES = ("CVE-2021-44228", "CVE-2023-4863", "CVE-2024-3094", "CVE-2024-6387", "CVE-2023-38545")
SEVERITIES = ("Critical", "Important", "Medium", "Low")
EPOCH = datetime(2026, 11, 1, tzinfo=UTC)


def customer_of(account_index: int, customers: int) -> str:
    return f"customer-{account_index % customers:03d}"


def account_snapshot(index: int, per_account: int, customers: int, rng: random.Random, taken_at: datetime) -> AccountSnapshot:
    account = f"{500000000000 + index:012d}"
    provider = PROVIDERS[index % len(PROVIDERS)]
    customer = customer_of(index, customers)
    snapshot = AccountSnapshot(account, taken_at)
    for n in range(per_account):
        mid = f"mi-{index:04d}{n:013x}" if provider != "ec2" else f"i-{index:04d}{n:013x}"
        os_name, os_version = OSES[rng.randrange(len(OSES))]
        roll = rng.random()
        scanned = roll > 0.05
        missing = rng.randint(1, 6) if 0.05 < roll < 0.35 else 0
        failed = 1 if 0.35 <= roll < 0.4 else 0
        snapshot.instances.append(InstanceSnapshot(
            managed_instance_id=mid, systems_account=account, customer=customer, provider=provider,
            instance_key=f"{customer}-{provider}/{n}", cloud_account=f"{customer}-{provider}",
            patch_group=GROUPS[n % 3], os_name=os_name, os_version=os_version, agent_version="3.3.1142.0",
            ping_status="Online" if rng.random() > 0.02 else "ConnectionLost", last_seen=taken_at,
            workflow_id=f"enroll/{provider}/{customer}-{provider}/{n}", evidence_provider=provider,
            evidence_digest=f"{rng.getrandbits(256):064x}", evidence_at=EPOCH,
            installed=rng.randint(20, 200), missing=missing, failed=failed, not_applicable=rng.randint(0, 50),
            baseline_id=f"pb-{os_name[:6].lower()}-{GROUPS[n % 3]}" if scanned else None,
            operation="Install" if scanned else None, operation_end=taken_at - timedelta(hours=2) if scanned else None,
        ))
        for k in range(missing + failed):
            snapshot.patches.append(PatchRecord(
                mid, f"Update {k} for {os_name}", f"KB{5030000 + k}", "Missing" if k < missing else "Failed",
                "SecurityUpdates", SEVERITIES[(n + k) % len(SEVERITIES)], [CVES[(n + k) % len(CVES)]],
            ))
        snapshot.patches.append(PatchRecord(mid, "Baseline update", "KB5000001", "Installed", "Updates", "Low",
                                            installed_time=EPOCH))
        snapshot.software.append(SoftwareItem(mid, "openssl", "3.0.13", "OpenSSL"))
    return snapshot


def seed(
    factory: sessionmaker[Session], instances: int = 10_000, accounts: int = 200, customers: int = 20,
    seed_value: int = 7, taken_at: datetime = EPOCH,
) -> None:
    """Fill an (upgraded) store with ``instances`` over ``accounts`` systems accounts."""
    rng = random.Random(seed_value)
    per_account = max(1, instances // accounts)
    for index in range(accounts):
        snapshot = account_snapshot(index, per_account, customers, rng, taken_at)
        runs = [
            WindowRunRecord(f"patch-window/{snapshot.systems_account}/early", f"run-{index}", snapshot.systems_account,
                            "early", i.managed_instance_id, "Success", "succeeded", installed=i.installed,
                            ended=taken_at - timedelta(days=1))
            for i in snapshot.instances[:10]
        ]
        with db.transaction(factory) as session:
            writes.apply_account_snapshot(session, snapshot)
            writes.record_window_runs(session, runs)
    with db.transaction(factory) as session:
        for day in range(30, -1, -1):
            writes.record_aggregates(session, taken_at - timedelta(days=day))

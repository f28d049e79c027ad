"""A small estate for the view tests: three customers over four clouds, with known numbers.

Instance ``n`` of an account is compliant when ``n % 3 == 0``, non-compliant (a missing patch, and
a failed one when ``n % 4 == 1``) when ``n % 3 == 1``, unknown (no scan yet) when ``n % 3 == 2``.
Its missing patch fixes CVE-2024-3094 on Linux and CVE-2024-38063 (Critical) on Windows.
"""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from config import secrets as secret_rules
from config.settings import Settings
from contracts.estate import AccountSnapshot, BaselineRecord, InstanceSnapshot, PatchRecord, SoftwareItem, WindowRunRecord
from estate import db, writes

T0 = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)
CUSTOMERS = ("acme", "globex", "initech")
ACCOUNTS = [  # systems account, customer, provider, cloud account
    ("210000000001", "acme", "gcp", "acme-prod"),
    ("210000000002", "acme", "azure", "5d2c0000-0000-4000-8000-000000000001"),
    ("210000000003", "globex", "aws", "333344445555"),
    ("210000000004", "globex", "vmware", "vc-dc1"),
    ("210000000005", "initech", "gcp", "initech-web"),
]
PER_ACCOUNT = 6


def mid(account_index: int, n: int) -> str:
    return f"mi-{account_index:08x}{n:09x}"


def _instance(a: int, n: int, account: str, customer: str, provider: str, cloud: str) -> InstanceSnapshot:
    state = n % 3
    windows = n % 2 == 1
    return InstanceSnapshot(
        managed_instance_id=mid(a, n), systems_account=account, instance_key=f"{cloud}/vm-{n}",
        provider=provider, customer=customer, cloud_account=cloud, patch_group=("early", "on-time", "late")[n % 3],
        os_name="Microsoft Windows Server 2022" if windows else "Ubuntu", os_version="10.0" if windows else "22.04",
        agent_version="3.3.0.0", ping_status="Online", last_seen=T0,
        workflow_id=f"enroll/{provider}/{cloud}/vm-{n}", workflow_run_id=f"run-{a}-{n}",
        evidence_provider=provider, evidence_key_id=f"kid-{provider}", evidence_digest="ab" * 32, evidence_at=T0,
        installed=5, missing=1 if state == 1 else 0, failed=1 if state == 1 and n % 4 == 1 else 0,
        baseline_id=f"pb-{a:017x}", operation=None if state == 2 else "Install",
        operation_end=None if state == 2 else T0,
    )


def _patches(inst: InstanceSnapshot) -> list[PatchRecord]:
    windows = "Windows" in (inst.os_name or "")
    out = [PatchRecord(inst.managed_instance_id, "base fix", "kb-base", "Installed", "Security", "Low")]
    if inst.missing:
        cve, severity = ("CVE-2024-38063", "Critical") if windows else ("CVE-2024-3094", "Important")
        out.append(PatchRecord(inst.managed_instance_id, f"fix for {cve}", "KB5041578" if windows else "xz-utils",
                               "Missing", "Security", severity, [cve]))
    if inst.failed:
        out.append(PatchRecord(inst.managed_instance_id, "kernel", "linux-image", "Failed", "Security", "Moderate"))
    return out


def snapshots() -> list[AccountSnapshot]:
    found = []
    for a, (account, customer, provider, cloud) in enumerate(ACCOUNTS):
        instances = [_instance(a, n, account, customer, provider, cloud) for n in range(PER_ACCOUNT)]
        patches = [p for i in instances for p in _patches(i)]
        software = [SoftwareItem(i.managed_instance_id, "openssl", "3.0.2", "OpenSSL") for i in instances]
        baselines = [BaselineRecord(f"pb-{a:017x}", f"fleetpatch-{provider}", "UBUNTU", "approve after 7 days")]
        found.append(AccountSnapshot(account, T0, instances, patches, software, baselines))
    return found


def expected(customer: str | None = None) -> Counter:
    """The counters ``GET /v1/compliance`` must answer for one customer (None: everyone)."""
    totals: Counter = Counter()
    for snap in snapshots():
        for inst in snap.instances:
            if customer is not None and inst.customer != customer:
                continue
            totals["instances"] += 1
            totals["missing"] += inst.missing
            totals["failed"] += inst.failed
            key = "unknown" if inst.operation is None else "non_compliant" if inst.missing + inst.failed else "compliant"
            totals[key] += 1
            windows = "Windows" in (inst.os_name or "")
            totals["critical_missing"] += 1 if inst.missing and windows else 0
    return totals


def held_runs() -> list[WindowRunRecord]:
    """acme's late Ubuntu instance was only scanned: no early Ubuntu anywhere in acme's estate
    (no end time: the instance's counters stay as the snapshot says). globex's late Ubuntu instance
    was held once, then a newer run installed a train for it."""
    def run(account: int, run_id: str, held: bool) -> WindowRunRecord:
        system = ACCOUNTS[account][0]
        return WindowRunRecord(f"patch-window/{system}/late/{run_id}", run_id, system, "late", mid(account, 2),
                               "Success", "succeeded", os="ubuntu", held=held)
    return [run(0, "run-late-acme", True), run(2, "run-late-globex-1", True), run(2, "run-late-globex-2", False)]


def seed(url: str) -> None:
    """Migrate the store at ``url`` and fill it: snapshots, one window run, two trend points."""
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        factory = db.sessions(engine)
        with db.transaction(factory) as session:
            for snap in snapshots():
                writes.apply_account_snapshot(session, snap)
            writes.record_window_runs(session, [WindowRunRecord(
                "patch-window/210000000001/early/2026-11-10", "run-w1", "210000000001", "early", mid(0, 0),
                "Success", "succeeded", installed=3, ended=T0)])
            writes.record_window_runs(session, held_runs())
            writes.record_aggregates(session, T0 - timedelta(days=1))
            writes.record_aggregates(session, T0)
    finally:
        engine.dispose()


def strong_secret() -> str:
    """A random secret the start-up check accepts (>= 32 characters, no placeholder by chance)."""
    while True:
        value = secrets.token_urlsafe(32)
        if secret_rules.weakness(value) is None:
            return value


#: the admin token of this test run (random: start-up refuses short or placeholder secrets)
ADMIN_TOKEN = strong_secret()


def settings_for(state_dir: Path, admin_token: str = ADMIN_TOKEN) -> Settings:
    return Settings(state_dir=state_dir, api={"admin_token": admin_token,
                                              "temporal_ui_url": "http://127.0.0.1:8233"})

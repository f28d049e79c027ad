"""clouds/aws/patch_train.py against the real local AWS (S3 in a fresh systems account), and the
InstallOverrideList rendering as YAML."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from clouds.aws.patch_train import PatchTrainStore, render_override_list, train_entries
from contracts.patching import (
    InstanceResult,
    InstanceStatus,
    PatchRef,
    RingRunRecord,
    WindowOutcome,
    WindowSummary,
)
from contracts.providers import PatchGroup

BUCKET = "fleetpatch-patching-{account_id}-{region}"
UBUNTU = [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15"), PatchRef("libssl3.amd64", "libssl3.amd64:3.0.2-0ubuntu1.15")]
WINDOWS = [PatchRef("KB5040437", "2024-07 Cumulative Update for Windows Server 2022 for x64-based Systems (KB5040437)")]


def test_record_train_writes_override_lists_and_a_manifest(local_aws, sessions, systems_account) -> None:
    store = PatchTrainStore(sessions, BUCKET)
    failed = [PatchRef("libssl3.amd64", "libssl3.amd64:3.0.2-0ubuntu1.15")]
    train = store.record_train(
        systems_account, train_id="run-1", recorded_by="patch-window/x/early-1",
        installed={"ubuntu": UBUNTU + UBUNTU[:1], "windows": WINDOWS}, failed={"ubuntu": failed},
        covered_os=["debian", "ubuntu", "windows"],
    )
    bucket = f"fleetpatch-patching-{systems_account.account_id}-us-east-1"
    assert train.per_os["ubuntu"].count == 1
    assert train.per_os["ubuntu"].url == f"s3://{bucket}/patch-train/run-1/ubuntu.yaml"
    assert train.per_os["windows"].count == 1
    assert train.per_os["debian"].count == 0 and train.per_os["debian"].url is None  # covered, nothing installed

    ubuntu = yaml.safe_load(store.read_object(systems_account, train.per_os["ubuntu"].url))
    assert ubuntu == {"patches": [{"id": "openssl.amd64", "title": "openssl.amd64:3.0.2-0ubuntu1.15"}]}
    windows = yaml.safe_load(store.read_object(systems_account, train.per_os["windows"].url))
    assert windows["patches"][0]["id"] == "KB5040437"
    assert store.read_train(systems_account, "run-1") == train

    s3 = local_aws.client("s3", local_aws.assume(systems_account.account_id))
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    statement = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]
    assert statement["Resource"] == f"arn:aws:s3:::{bucket}/patch-train/*" and statement["Action"] == "s3:GetObject"
    role = f"arn:aws:iam::{systems_account.account_id}:role/fleetpatch-ssm-managed-instance"
    assert statement["Principal"] == {"AWS": role}
    assert store.read_train(systems_account, "no-such-run") is None


def test_ring_records_round_trip_and_an_older_run_never_overwrites(local_aws, sessions, systems_account) -> None:
    store = PatchTrainStore(sessions, BUCKET)
    assert store.ring_record(systems_account, PatchGroup.EARLY) is None
    start = datetime(2026, 1, 13, 2, tzinfo=UTC)
    train = store.record_train(systems_account, train_id="t1", recorded_by="w1", installed={"ubuntu": UBUNTU},
                               failed={}, covered_os=["ubuntu"])
    newer = _record("w2", start + timedelta(days=28), 0.5, train)
    older = _record("w1", start, 1.0, None)
    store.record_ring_run(systems_account, newer, _summary(newer))
    store.record_ring_run(systems_account, older, _summary(older))  # finishes late, started earlier
    got = store.ring_record(systems_account, PatchGroup.EARLY)
    assert got == newer and got.train is not None and got.train.per_os["ubuntu"].count == 2

    summary = _summary(newer)
    summary.instances = [InstanceResult("mi-0123456789abcdef0", "ubuntu", InstanceStatus.FAILED, "apt failed")]
    url = store.write_report(systems_account, "patch-window/x/early-2", 3, summary.instances)
    assert url.endswith("/reports/patch-window/x/early-2/batch-0003.json")
    assert store.read_report_rows(systems_account, url) == summary.instances


def test_train_entries_drop_failed_and_duplicates() -> None:
    a, b = PatchRef("a.amd64", "a.amd64:1"), PatchRef("b.amd64", "b.amd64:2")
    assert train_entries([b, a, a, PatchRef("a.amd64", "a.amd64:0")], [PatchRef("a.amd64", "a.amd64:0")]) == [a, b]
    assert render_override_list([]) == "patches: []\n"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1), st.text()), min_size=1, max_size=5))
def test_override_list_yaml_keeps_every_id_and_title_literal(pairs: list[tuple[str, str]]) -> None:
    patches = [PatchRef(i, t) for i, t in pairs]
    parsed = yaml.safe_load(render_override_list(patches))["patches"]
    assert [(e["id"], e.get("title", "")) for e in parsed] == pairs


def _record(workflow_id: str, started: datetime, rate: float, train) -> RingRunRecord:
    return RingRunRecord(group=PatchGroup.EARLY, workflow_id=workflow_id, run_id=f"{workflow_id}-run", started=started,
                         finished=started + timedelta(hours=3), outcome=WindowOutcome.COMPLETED_WITH_FAILURES,
                         targets=10, succeeded=int(rate * 10), success_rate=rate, train=train)


def _summary(record: RingRunRecord) -> WindowSummary:
    return WindowSummary(account_id="x", group=record.group, outcome=record.outcome, started=record.started,
                         finished=record.finished, workflow_id=record.workflow_id)

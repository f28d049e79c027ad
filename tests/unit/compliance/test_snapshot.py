"""From SSM's answers to estate rows (pure): tenant from the account, states mapped, EC2 keys."""

from __future__ import annotations

from datetime import UTC, datetime

from clouds.aws.ssm_estate import AccountReading, build_snapshot, describe_rules, window_runs
from contracts.compliance import RecordWindowInput, SyncTarget
from contracts.enrollment import AccountRef
from contracts.estate import PatchState
from contracts.patching import InstanceResult, InstanceStatus

NOW = datetime(2024, 7, 1, 12, tzinfo=UTC)
ACCOUNT = AccountRef(account_id="210000001000", role_arn="arn:aws:iam::210000001000:role/R")


def _reading() -> AccountReading:
    return AccountReading(
        infos=[
            {"InstanceId": "mi-0000000000000000a", "ResourceType": "ManagedInstance", "PingStatus": "Online",
             "PlatformName": "Ubuntu", "PlatformVersion": "22.04", "PlatformType": "Linux",
             "AgentVersion": "3.3.1142.0", "LastPingDateTime": NOW},
            {"InstanceId": "i-0123456789abcdef0", "ResourceType": "EC2Instance", "PingStatus": "ConnectionLost"},
        ],
        tags={"mi-0000000000000000a": {"fleetpatch:instance-key": "acme-demo-1/42", "fleetpatch:enrollment": "run-1",
                                       "Patch Group": "early", "fleetpatch:customer": "someone-else"}},
        states={"mi-0000000000000000a": {"InstanceId": "mi-0000000000000000a", "PatchGroup": "early",
                                         "BaselineId": "pb-00000000000000001", "Operation": "Install",
                                         "InstalledCount": 5, "MissingCount": 2, "FailedCount": 1,
                                         "OperationEndTime": NOW}},
        patches={"mi-0000000000000000a": [
            {"Title": "openssl", "KBId": "openssl.amd64", "Classification": "Security", "Severity": "Critical",
             "State": "MISSING", "CVEIds": "CVE-2023-0286,CVE-2023-0215"},
            {"Title": "x", "KBId": "KB1", "State": "AVAILABLE_SECURITY_UPDATE"},
        ]},
        applications={"mi-0000000000000000a": [{"Name": "openssl", "Version": "3.0.2", "Architecture": "amd64"},
                                               {"Version": "nameless"}]},
        baselines={"pb-00000000000000001": {"BaselineId": "pb-00000000000000001", "Name": "fleetpatch-ubuntu-early",
                                            "OperatingSystem": "UBUNTU", "PatchGroups": ["early"],
                                            "ApprovalRules": {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [
                                                {"Key": "PRIORITY", "Values": ["Required", "Important"]}]}}]}}},
    )


def test_build_snapshot() -> None:
    target = SyncTarget(account=ACCOUNT, customer="acme", provider="gcp", cloud_account="acme-demo-1")
    snapshot = build_snapshot(target, NOW, _reading())
    hybrid, ec2 = snapshot.instances
    assert (hybrid.customer, hybrid.provider, hybrid.cloud_account) == ("acme", "gcp", "acme-demo-1")  # not the tag
    assert hybrid.instance_key == "acme-demo-1/42" and hybrid.workflow_id == "enroll/gcp/acme-demo-1/42"
    assert (hybrid.workflow_run_id, hybrid.patch_group, hybrid.os_name) == ("run-1", "early", "Ubuntu")
    assert (hybrid.installed, hybrid.missing, hybrid.failed, hybrid.operation) == (5, 2, 1, "Install")
    assert ec2.operation is None and ec2.ping_status == "ConnectionLost"  # no patch state: unknown
    assert ec2.instance_key == "acme-demo-1/i-0123456789abcdef0"
    missing, other = snapshot.patches
    assert missing.state == PatchState.MISSING and missing.cve_ids == ["CVE-2023-0286", "CVE-2023-0215"]
    assert other.state == "AvailableSecurityUpdate" and other.cve_ids == []
    assert [(s.name, s.architecture) for s in snapshot.software] == [("openssl", "amd64")]
    (baseline,) = snapshot.baselines
    assert baseline.approval_rule == "approve on release: PRIORITY Required, Important"
    assert baseline.patch_group == "early"


def test_describe_rules() -> None:
    rules = {"PatchRules": [{"ApproveAfterDays": 7, "PatchFilterGroup": {"PatchFilters": [
        {"Key": "CLASSIFICATION", "Values": ["Security", "Bugfix"]}, {"Key": "SEVERITY", "Values": ["Critical"]}]}}]}
    assert describe_rules(rules) == "approve after 7 days: CLASSIFICATION Security, Bugfix; SEVERITY Critical"
    assert describe_rules({}) is None


def test_window_runs_take_counts_from_the_reread_state() -> None:
    inp = RecordWindowInput(
        account=ACCOUNT, window_workflow_id="patch-window/210000001000/early", run_id="r1", patch_group="early",
        outcome="succeeded", instances=[
            InstanceResult("mi-0000000000000000a", "ubuntu", InstanceStatus.SUCCEEDED, installed=1),
            InstanceResult("mi-0000000000000000b", "ubuntu", InstanceStatus.NOT_DISPATCHED),
        ])
    reached, skipped = window_runs(inp, {"mi-0000000000000000a": {"InstalledCount": 9, "MissingCount": 0,
                                                                  "FailedCount": 0, "OperationEndTime": NOW,
                                                                  "BaselineId": "pb-0123456789abcdef0"}})
    assert (reached.status, reached.installed, reached.ended, reached.outcome) == ("succeeded", 9, NOW, "succeeded")
    assert reached.baseline_id == "pb-0123456789abcdef0"  # the baseline the window patched with
    assert (skipped.status, skipped.ended, skipped.baseline_id) == ("not-dispatched", None, None)  # leaves the stored state alone


def test_account_of_a_role_arn() -> None:
    from activities.compliance import _account_of

    assert _account_of("arn:aws:iam::210000009000:role/FleetpatchAccess") == "210000009000"
    for bad in (None, "", "arn:aws:iam::12345:role/x", "arn:aws:s3:::bucket", "not-an-arn"):
        assert _account_of(bad) is None

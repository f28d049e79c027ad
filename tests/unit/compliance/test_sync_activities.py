"""The ComplianceSync activities against the real local AWS and a real SQLite estate store: what
SSM reports (patch states, patches with CVEs, inventory) is what the store holds and reads back."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.compliance import ComplianceActivities
from clouds.aws.links import LinkStore
from clouds.aws.organizations import Organizations
from clouds.aws.ssm_estate import SsmEstateReader
from contracts.compliance import (
    ListSyncAccountsInput,
    RecordAggregatesInput,
    RecordWindowInput,
    SyncAccountInput,
    SyncTarget,
)
from contracts.enrollment import AccountRef, TenantLink, account_tags
from contracts.patching import InstanceResult, InstanceStatus
from contracts.providers import Provider
from estate import reads
from estate.results import Scope
from localclouds.aws import REGION
from localclouds.aws.agent_client import patch_summary_item

WINDOWS = ("Microsoft Windows Server 2022 Datacenter", "Windows", "10.0.20348")
UBUNTU = ("Ubuntu", "Linux", "22.04")


def _agent(local_aws: Any, ssm: Any, key: str, group: str, platform: tuple[str, str, str]) -> Any:
    activation = ssm.create_activation(IamRole="SSMServiceRole", Tags=[
        {"Key": "Patch Group", "Value": group}, {"Key": "fleetpatch:instance-key", "Value": key},
        {"Key": "fleetpatch:enrollment", "Value": f"run-{key}"}])
    return local_aws.agent(ssm, activation, platform=platform)


def _report(agent: Any, baseline: str, group: str, installed: int, missing: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    agent.put_inventory([patch_summary_item(
        now, PatchGroup=group, BaselineId=baseline, Operation="Install", InstalledCount=installed,
        MissingCount=len(missing), FailedCount=0, NotApplicableCount=1,
        OperationStartTime=(now - timedelta(minutes=3)).isoformat(), OperationEndTime=now.isoformat())])
    items = [{"Id": f"pkg-{n}", "Title": f"pkg-{n}", "Severity": "HIGH", "Status": "COMPLIANT",
              "Details": {"PatchState": "INSTALLED", "Classification": "Security", "PatchSeverity": "Important",
                          "InstalledTime": "2024-07-01T00:00:00Z"}} for n in range(installed)]
    agent.put_compliance_items("Patch", items + missing, now)


def _populated_account(local_aws: Any, aws_sessions: Any) -> tuple[SyncTarget, Any, list[Any]]:
    account_id, session = local_aws.new_account()
    ssm = local_aws.client("ssm", session)
    baseline = ssm.create_patch_baseline(Name="fleetpatch-windows-early", OperatingSystem="WINDOWS", ApprovalRules={
        "PatchRules": [{"PatchFilterGroup": {"PatchFilters": [{"Key": "MSRC_SEVERITY", "Values": ["Critical"]}]},
                        "ApproveAfterDays": 0}]})["BaselineId"]
    ubuntu = _agent(local_aws, ssm, "acme-demo-1/1", "early", UBUNTU)
    windows = _agent(local_aws, ssm, "acme-demo-1/2", "early", WINDOWS)
    silent = _agent(local_aws, ssm, "acme-demo-1/3", "late", UBUNTU)
    _report(ubuntu, baseline, "early", 3, [])
    _report(windows, baseline, "early", 2, [
        {"Id": "KB5040437", "Title": "2024-07 Cumulative Update (KB5040437)", "Severity": "CRITICAL",
         "Status": "NON_COMPLIANT", "Details": {"PatchState": "MISSING", "Classification": "SecurityUpdates",
                                                "PatchSeverity": "Critical", "CVEIds": "CVE-2024-38080,CVE-2024-38112"}},
        {"Id": "KB5040571", "Title": ".NET (KB5040571)", "Severity": "HIGH", "Status": "NON_COMPLIANT",
         "Details": {"PatchState": "MISSING", "Classification": "SecurityUpdates", "PatchSeverity": "Important"}}])
    ubuntu.put_inventory([{"TypeName": "AWS:Application", "SchemaVersion": "1.1", "CaptureTime": "2024-07-01T00:00:00Z",
                           "Content": [{"Name": "openssl", "Version": "3.0.2-0ubuntu1.15", "Architecture": "amd64"},
                                       {"Name": "sudo", "Version": "1.9.9-1ubuntu2.4"}]}])
    target = SyncTarget(account=AccountRef(account_id=account_id, role_arn=aws_sessions.role_arn_for(account_id),
                                           region=REGION),
                        customer="acme", provider="gcp", cloud_account="acme-demo-1")
    return target, ssm, [ubuntu, windows, silent]


def test_sync_account_fills_the_store_as_ssm_reports(local_aws, aws_settings, aws_sessions, store) -> None:
    target, ssm, (ubuntu, windows, silent) = _populated_account(local_aws, aws_sessions)
    acts = ComplianceActivities(aws_settings, store, aws_sessions)
    env = ActivityEnvironment()
    taken = datetime.now(UTC)
    applied = env.run(acts.sync_account_estate, SyncAccountInput(target=target, taken_at=taken))
    assert (applied.instances, applied.new, applied.departed) == (3, 3, 0)

    ssm_states = ssm.describe_instance_patch_states(
        InstanceIds=[ubuntu.instance_id, windows.instance_id, silent.instance_id])["InstancePatchStates"]
    with store() as session:
        report = reads.compliance(session, Scope.everything(), ["customer", "patch_group"])
        totals = report.totals
        assert totals.instances == 3 == len(ssm.describe_instance_information()["InstanceInformationList"])
        assert totals.missing == sum(s["MissingCount"] for s in ssm_states) == 2
        assert (totals.compliant, totals.non_compliant, totals.unknown, totals.critical_missing) == (1, 1, 1, 1)
        assert {tuple(g.keys.values()): g.counters.instances for g in report.groups} == {
            ("acme", "early"): 2, ("acme", "late"): 1}
        detail = reads.instance_detail(session, Scope.everything(), windows.instance_id)
        assert detail is not None and detail.instance.instance_key == "acme-demo-1/2"
        assert (detail.enrollment.workflow_id, detail.enrollment.run_id) == ("enroll/gcp/acme-demo-1/2", "run-acme-demo-1/2")
        assert {p.kb_id: p.cve_ids for p in detail.patches if p.state == "Missing"} == {
            "KB5040437": ["CVE-2024-38080", "CVE-2024-38112"], "KB5040571": []}
        assert detail.baseline is not None and detail.baseline.name == "fleetpatch-windows-early"
        software = reads.instance_detail(session, Scope.everything(), ubuntu.instance_id).inventory
        assert sorted((s.name, s.version) for s in software) == [("openssl", "3.0.2-0ubuntu1.15"),
                                                                 ("sudo", "1.9.9-1ubuntu2.4")]
        exposure = reads.cve_exposure(session, Scope.everything(), "CVE-2024-38080")
        assert exposure.instances == 1 and exposure.groups[0].instances == [windows.instance_id]
        assert reads.compliance(session, Scope.of_customer("globex"), []).totals.instances == 0

    ssm.deregister_managed_instance(InstanceId=silent.instance_id)  # it left: marked, never erased
    again = env.run(acts.sync_account_estate, SyncAccountInput(target=target, taken_at=datetime.now(UTC)))
    assert (again.instances, again.new, again.departed) == (2, 0, 1)
    rows = env.run(acts.record_compliance_aggregates, RecordAggregatesInput(at=datetime.now(UTC)))
    assert rows.rows == 1  # acme/gcp/early (the late instance left)
    with store() as session:
        assert reads.compliance(session, Scope.of_customer("acme"), []).totals.instances == 2
        assert len(reads.trend(session, Scope.everything(), days=1)) == 1


def test_a_sync_reads_and_writes_the_account_a_part_at_a_time(local_aws, aws_settings, aws_sessions, store) -> None:
    """The worker never holds a whole account: ``parts`` yields at most ``size`` instances, each
    with only its own tags, states, patches and software (inventory filtered by instance id), a
    baseline once; the sync applies part by part and departs only what the whole listing missed."""
    target, ssm, (ubuntu, windows, silent) = _populated_account(local_aws, aws_sessions)
    parts = list(SsmEstateReader(aws_sessions).parts(target.account, size=2))
    assert [len(p.infos) for p in parts] == [2, 1]
    for part in parts:
        ids = {i["InstanceId"] for i in part.infos}
        assert set(part.tags) == ids and set(part.patches) == ids
        assert set(part.states) <= ids and set(part.applications) <= ids
    assert [app for p in parts for app in p.applications] == [ubuntu.instance_id]
    assert sum(len(p.baselines) for p in parts) == 1  # read once, by the first part that names it

    acts = ComplianceActivities(aws_settings, store, aws_sessions, part_size=2)
    env = ActivityEnvironment()
    applied = env.run(acts.sync_account_estate, SyncAccountInput(target=target, taken_at=datetime.now(UTC)))
    assert (applied.instances, applied.new, applied.departed, applied.patches, applied.software) == (3, 3, 0, 7, 2)
    with store() as session:
        assert reads.compliance(session, Scope.everything(), []).totals.instances == 3
        detail = reads.instance_detail(session, Scope.everything(), windows.instance_id)
        assert detail.baseline is not None and detail.baseline.name == "fleetpatch-windows-early"
    ssm.deregister_managed_instance(InstanceId=ubuntu.instance_id)  # the first part's instance left
    again = env.run(acts.sync_account_estate, SyncAccountInput(target=target, taken_at=datetime.now(UTC)))
    assert (again.instances, again.new, again.departed) == (2, 0, 1)
    with store() as session:
        assert reads.compliance(session, Scope.everything(), []).totals.instances == 2


def test_window_results_reach_the_store(local_aws, aws_settings, aws_sessions, store) -> None:
    target, ssm, (ubuntu, windows, silent) = _populated_account(local_aws, aws_sessions)
    acts = ComplianceActivities(aws_settings, store, aws_sessions)
    env = ActivityEnvironment()
    env.run(acts.sync_account_estate, SyncAccountInput(target=target, taken_at=datetime.now(UTC) - timedelta(hours=1)))
    time.sleep(1.1)  # the window's install ends after the sync's patch state
    _report(windows, "pb-00000000000000000", "early", 4, [])  # the window installed what was missing
    result = env.run(acts.record_window_results, RecordWindowInput(
        account=target.account, window_workflow_id=f"patch-window/{target.account.account_id}/early",
        run_id="run-w1", patch_group="early", outcome="succeeded", finished=datetime.now(UTC), instances=[
            InstanceResult(windows.instance_id, "windows", InstanceStatus.SUCCEEDED, installed=4, operation="Install"),
            InstanceResult(ubuntu.instance_id, "ubuntu", InstanceStatus.NOT_DISPATCHED, "the cutoff came"),
        ]))
    assert (result.recorded, result.refreshed) == (2, 1)
    with store() as session:
        detail = reads.instance_detail(session, Scope.everything(), windows.instance_id)
        assert detail is not None and (detail.instance.compliance, detail.instance.missing) == ("compliant", 0)
        assert [(w.run_id, w.status) for w in detail.windows] == [("run-w1", "succeeded")]
        untouched = reads.instance_detail(session, Scope.everything(), ubuntu.instance_id)
        assert untouched.instance.installed == 3 and [w.status for w in untouched.windows] == ["not-dispatched"]
        assert reads.held_os(session, Scope.everything()) == {}
    # A later ring only scanned Ubuntu (no early Ubuntu anywhere): the compliance view says so.
    env.run(acts.record_window_results, RecordWindowInput(
        account=target.account, window_workflow_id=f"patch-window/{target.account.account_id}/on-time",
        run_id="run-w2", patch_group="on-time", outcome="succeeded", finished=datetime.now(UTC), held_os=["ubuntu"],
        instances=[InstanceResult(ubuntu.instance_id, "ubuntu", InstanceStatus.SUCCEEDED, operation="Scan"),
                   InstanceResult(windows.instance_id, "windows", InstanceStatus.SUCCEEDED, operation="Install")]))
    with store() as session:
        assert reads.held_os(session, Scope.everything()) == {"acme": ["ubuntu"]}


def test_list_sync_accounts(local_aws, aws_settings, aws_sessions, store) -> None:
    stem = secrets.token_hex(4)
    settings = aws_settings.model_copy(update={"links_parameter_prefix": f"/fleetpatch-{stem}/links"})
    org = Organizations(aws_sessions)
    request = org.submit(f"fleetpatch-acme-gcp-{stem}", f"sync-{stem}@systems.example",
                         account_tags("acme", Provider.GCP, f"acme-{stem}"))
    untagged = org.submit(f"other-{stem}", f"other-{stem}@systems.example", {})
    vended = _settled(org, request)
    other = _settled(org, untagged)
    LinkStore(aws_sessions, settings.links_parameter_prefix).put(TenantLink(
        provider=Provider.AWS, cloud_account="210000009000", customer="globex",
        role_arn="arn:aws:iam::210000009000:role/FleetpatchAccess", external_id="x-1"))
    acts = ComplianceActivities(settings, store, aws_sessions)
    listed = ActivityEnvironment().run(acts.list_sync_accounts, ListSyncAccountsInput()).targets
    by_id = {t.account.account_id: t for t in listed}
    assert other not in by_id
    assert (by_id[vended].customer, by_id[vended].provider, by_id[vended].cloud_account) == ("acme", "gcp", f"acme-{stem}")
    assert by_id[vended].account.role_arn == aws_sessions.role_arn_for(vended)
    own = by_id["210000009000"]
    assert (own.customer, own.provider, own.account.role_arn, own.account.external_id) == (
        "globex", "aws", "arn:aws:iam::210000009000:role/FleetpatchAccess", "x-1")
    only = ActivityEnvironment().run(acts.list_sync_accounts, ListSyncAccountsInput(only_accounts=[vended])).targets
    assert [t.account.account_id for t in only] == [vended]


def _settled(org: Organizations, request: str) -> str:
    deadline = time.monotonic() + 10
    while True:
        status = org.status(request)
        if status.state == "SUCCEEDED" and status.account_id:
            return status.account_id
        assert status.state == "IN_PROGRESS" and time.monotonic() < deadline, status
        time.sleep(0.1)


def test_an_ec2_node_takes_its_patch_group_from_its_ec2_tags(local_aws, aws_settings, aws_sessions, store) -> None:
    """SSM keeps no tags of its own for ``i-`` nodes: the row's patch group is the EC2 tag."""
    from localclouds.aws.agent_client import _session

    account_id, session = local_aws.new_account()
    ec2 = local_aws.client("ec2", session)
    tagged = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Patch Group", "Value": "on-time"}]}])["Instances"][0]["InstanceId"]
    untagged = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    creds = session.get_credentials()
    agent = _session().create_client("ssm-agent", region_name=REGION, endpoint_url=local_aws.endpoint,
                                     aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key,
                                     aws_session_token=creds.token)
    for instance_id in (tagged, untagged):
        agent.update_instance_information(InstanceId=instance_id, AgentVersion="3.3.1142.0", PlatformName="Ubuntu",
                                          PlatformType="Linux", PlatformVersion="22.04")
    target = SyncTarget(account=AccountRef(account_id=account_id, role_arn=aws_sessions.role_arn_for(account_id),
                                           region=REGION),
                        customer="acme", provider="aws", cloud_account=account_id)
    acts = ComplianceActivities(aws_settings, store, aws_sessions)
    applied = ActivityEnvironment().run(acts.sync_account_estate, SyncAccountInput(target=target, taken_at=datetime.now(UTC)))
    assert applied.instances == 2
    with store() as db_session:
        rows = {i: reads.instance_detail(db_session, Scope.everything(), i).instance for i in (tagged, untagged)}
    assert rows[tagged].patch_group == "on-time" and rows[untagged].patch_group is None
    assert rows[tagged].instance_key == f"{account_id}/{tagged}"

"""Patch baselines, patch groups, agent-reported patch states, snapshots, associations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import botocore.exceptions
import pytest

from localclouds.aws.agent_client import patch_summary_item

RULES_7_DAYS = {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [
    {"Key": "CLASSIFICATION", "Values": ["Security"]}]}, "ApproveAfterDays": 7}]}
UBUNTU_RULES = {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [
    {"Key": "PRIORITY", "Values": ["Required", "Important"]}]}}]}


def test_baseline_crud_and_filters(ssm):
    baseline_id = ssm.create_patch_baseline(
        Name="fleetpatch-rhel-early", OperatingSystem="REDHAT_ENTERPRISE_LINUX",
        ApprovalRules=RULES_7_DAYS, Description="early ring",
        Tags=[{"Key": "fleetpatch", "Value": "yes"}])["BaselineId"]
    got = ssm.get_patch_baseline(BaselineId=baseline_id)
    assert got["Name"] == "fleetpatch-rhel-early"
    assert got["OperatingSystem"] == "REDHAT_ENTERPRISE_LINUX"
    assert got["ApprovalRules"]["PatchRules"][0]["ApproveAfterDays"] == 7
    assert got["PatchGroups"] == []

    updated = ssm.update_patch_baseline(BaselineId=baseline_id, Description="changed",
                                        RejectedPatches=["kernel-debug"])
    assert updated["Description"] == "changed" and updated["RejectedPatches"] == ["kernel-debug"]
    assert updated["ApprovalRules"] == got["ApprovalRules"]  # untouched without Replace

    mine = ssm.describe_patch_baselines(Filters=[{"Key": "OWNER", "Values": ["Self"]}])
    assert [b["BaselineId"] for b in mine["BaselineIdentities"]] == [baseline_id]
    aws = ssm.describe_patch_baselines(
        Filters=[{"Key": "OWNER", "Values": ["AWS"]},
                 {"Key": "OPERATING_SYSTEM", "Values": ["UBUNTU"]}])["BaselineIdentities"]
    assert len(aws) == 1 and aws[0]["DefaultBaseline"] is True
    by_prefix = ssm.describe_patch_baselines(Filters=[{"Key": "NAME_PREFIX",
                                                       "Values": ["fleetpatch-"]}])
    assert [b["BaselineId"] for b in by_prefix["BaselineIdentities"]] == [baseline_id]
    tags = ssm.list_tags_for_resource(ResourceType="PatchBaseline", ResourceId=baseline_id)
    assert tags["TagList"] == [{"Key": "fleetpatch", "Value": "yes"}]

    assert ssm.delete_patch_baseline(BaselineId=baseline_id)["BaselineId"] == baseline_id
    with pytest.raises(ssm.exceptions.DoesNotExistException):
        ssm.get_patch_baseline(BaselineId=baseline_id)


def test_ubuntu_refuses_approval_delays(ssm):
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        ssm.create_patch_baseline(Name="ubuntu-x", OperatingSystem="UBUNTU", ApprovalRules=RULES_7_DAYS)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    ok = ssm.create_patch_baseline(Name="ubuntu-x", OperatingSystem="UBUNTU", ApprovalRules=UBUNTU_RULES)
    assert ok["BaselineId"].startswith("pb-")
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        ssm.create_patch_baseline(Name="windows-x", OperatingSystem="WINDOWS", ApprovalRules=UBUNTU_RULES)
    assert missing.value.response["Error"]["Code"] == "ValidationException"


def test_patch_groups(ssm):
    windows = ssm.create_patch_baseline(Name="win-early", OperatingSystem="WINDOWS",
                                        ApprovalRules=RULES_7_DAYS)["BaselineId"]
    other = ssm.create_patch_baseline(Name="win-other", OperatingSystem="WINDOWS",
                                      ApprovalRules=RULES_7_DAYS)["BaselineId"]
    ubuntu = ssm.create_patch_baseline(Name="ubu-early", OperatingSystem="UBUNTU",
                                       ApprovalRules=UBUNTU_RULES)["BaselineId"]
    ssm.register_patch_baseline_for_patch_group(BaselineId=windows, PatchGroup="early")
    ssm.register_patch_baseline_for_patch_group(BaselineId=ubuntu, PatchGroup="early")
    with pytest.raises(ssm.exceptions.AlreadyExistsException):
        ssm.register_patch_baseline_for_patch_group(BaselineId=other, PatchGroup="early")

    for os_name, expected in (("WINDOWS", windows), ("UBUNTU", ubuntu)):
        got = ssm.get_patch_baseline_for_patch_group(PatchGroup="early",
                                                     OperatingSystem=os_name)
        assert got["BaselineId"] == expected
    fallback = ssm.get_patch_baseline_for_patch_group(PatchGroup="late",
                                                      OperatingSystem="WINDOWS")["BaselineId"]
    assert fallback == ssm.get_default_patch_baseline(OperatingSystem="WINDOWS")["BaselineId"]
    assert fallback.startswith("arn:aws:ssm:")
    assert ssm.get_patch_baseline(BaselineId=windows)["PatchGroups"] == ["early"]
    mappings = ssm.describe_patch_groups()["Mappings"]
    assert sorted((m["PatchGroup"], m["BaselineIdentity"]["BaselineId"]) for m in mappings) == \
        sorted([("early", windows), ("early", ubuntu)])
    with pytest.raises(ssm.exceptions.ResourceInUseException):
        ssm.delete_patch_baseline(BaselineId=windows)

    ssm.deregister_patch_baseline_for_patch_group(BaselineId=windows, PatchGroup="early")
    with pytest.raises(ssm.exceptions.DoesNotExistException):
        ssm.deregister_patch_baseline_for_patch_group(BaselineId=windows, PatchGroup="early")
    again = ssm.get_patch_baseline_for_patch_group(PatchGroup="early", OperatingSystem="WINDOWS")
    assert again["BaselineId"] == fallback
    ssm.register_patch_baseline_for_patch_group(BaselineId=other, PatchGroup="early")


def _report(agent, group, installed, missing, failed=0, operation="Install"):
    now = datetime.now(UTC)
    agent.put_inventory([patch_summary_item(
        now, PatchGroup=group, BaselineId="pb-0123456789abcdef0", SnapshotId=str(uuid.uuid4()),
        InstalledCount=installed, MissingCount=missing, FailedCount=failed,
        InstalledPendingRebootCount=0, NotApplicableCount=4, CriticalNonCompliantCount=missing,
        Operation=operation, OperationStartTime=(now - timedelta(minutes=5)).isoformat(),
        OperationEndTime=now.isoformat(), RebootOption="RebootIfNeeded")])


def test_patch_states_from_agent_reports(local_aws, ssm):
    activation = ssm.create_activation(IamRole="R", RegistrationLimit=3)
    healthy, behind, other = (local_aws.agent(ssm, activation) for _ in range(3))
    _report(healthy, "early", installed=10, missing=0)
    _report(behind, "early", installed=7, missing=3, failed=1)
    _report(other, "late", installed=1, missing=0, operation="Scan")

    states = ssm.describe_instance_patch_states(
        InstanceIds=[healthy.instance_id, behind.instance_id])["InstancePatchStates"]
    by_id = {s["InstanceId"]: s for s in states}
    assert by_id[behind.instance_id]["MissingCount"] == 3
    assert by_id[behind.instance_id]["FailedCount"] == 1
    assert by_id[behind.instance_id]["Operation"] == "Install"
    assert by_id[behind.instance_id]["CriticalNonCompliantCount"] == 3
    assert by_id[healthy.instance_id]["InstalledCount"] == 10
    assert by_id[healthy.instance_id]["RebootOption"] == "RebootIfNeeded"
    assert by_id[healthy.instance_id]["OperationEndTime"] > by_id[healthy.instance_id][
        "OperationStartTime"]

    group = ssm.describe_instance_patch_states_for_patch_group(PatchGroup="early")
    assert sorted(s["InstanceId"] for s in group["InstancePatchStates"]) == sorted(
        [healthy.instance_id, behind.instance_id])
    missing = ssm.describe_instance_patch_states_for_patch_group(
        PatchGroup="early",
        Filters=[{"Key": "MissingCount", "Values": ["0"], "Type": "GreaterThan"}])
    assert [s["InstanceId"] for s in missing["InstancePatchStates"]] == [behind.instance_id]
    with pytest.raises(ssm.exceptions.InvalidFilter):
        ssm.describe_instance_patch_states_for_patch_group(
            PatchGroup="early", Filters=[{"Key": "Colour", "Values": ["1"], "Type": "Equal"}])
    summary = ssm.describe_patch_group_state(PatchGroup="early")
    assert summary["Instances"] == 2 and summary["InstancesWithMissingPatches"] == 1
    assert summary["InstancesWithFailedPatches"] == 1


def test_instance_patches_from_compliance_items(local_aws, ssm):
    agent = local_aws.agent(ssm)
    now = datetime.now(UTC)
    items = [
        {"Id": "KB5005565", "Title": "2021-09 Cumulative Update", "Severity": "CRITICAL",
         "Status": "COMPLIANT", "Details": {"Classification": "SecurityUpdates",
                                            "PatchSeverity": "Critical", "PatchState": "Installed",
                                            "InstalledTime": "2021-09-20T10:00:00Z"}},
        {"Id": "KB5006670", "Title": "2021-10 Cumulative Update", "Severity": "CRITICAL",
         "Status": "NON_COMPLIANT", "Details": {"Classification": "SecurityUpdates",
                                                "PatchSeverity": "Critical",
                                                "PatchState": "Missing"}},
        {"Id": "KB890830", "Title": "Malicious Software Removal Tool", "Severity": "UNSPECIFIED",
         "Status": "COMPLIANT", "Details": {"Classification": "UpdateRollups",
                                            "PatchSeverity": "Unspecified",
                                            "PatchState": "InstalledPendingReboot"}},
    ]
    agent.put_compliance_items("Patch", items, now)
    patches = ssm.describe_instance_patches(InstanceId=agent.instance_id)["Patches"]
    by_kb = {p["KBId"]: p for p in patches}
    assert by_kb["KB5005565"]["State"] == "INSTALLED"
    assert by_kb["KB5005565"]["InstalledTime"].year == 2021
    assert by_kb["KB5006670"]["State"] == "MISSING"
    assert by_kb["KB890830"]["State"] == "INSTALLED_PENDING_REBOOT"
    assert by_kb["KB5006670"]["Title"] == "2021-10 Cumulative Update"

    missing = ssm.describe_instance_patches(InstanceId=agent.instance_id,
                                            Filters=[{"Key": "State", "Values": ["Missing"]}])
    assert [p["KBId"] for p in missing["Patches"]] == ["KB5006670"]
    rollups = ssm.describe_instance_patches(
        InstanceId=agent.instance_id, Filters=[{"Key": "Classification",
                                                "Values": ["UpdateRollups"]}])
    assert [p["KBId"] for p in rollups["Patches"]] == ["KB890830"]
    critical = ssm.describe_instance_patches(
        InstanceId=agent.instance_id, Filters=[{"Key": "Severity", "Values": ["Critical"]}])
    assert len(critical["Patches"]) == 2

    agent.put_compliance_items("Patch", items[:1], now)  # COMPLETE replaces the whole set
    assert [p["KBId"] for p in ssm.describe_instance_patches(
        InstanceId=agent.instance_id)["Patches"]] == ["KB5005565"]
    with pytest.raises(ssm.exceptions.InvalidFilter):
        ssm.describe_instance_patches(InstanceId=agent.instance_id,
                                      Filters=[{"Key": "Colour", "Values": ["x"]}])


def test_deployable_snapshot_follows_patch_group(local_aws, ssm):
    baseline = ssm.create_patch_baseline(Name="ubu-late", OperatingSystem="UBUNTU",
                                         ApprovalRules=UBUNTU_RULES,
                                         RejectedPatches=["linux-image-6.8"])["BaselineId"]
    ssm.register_patch_baseline_for_patch_group(BaselineId=baseline, PatchGroup="late")
    grouped = local_aws.agent(ssm, ssm.create_activation(
        IamRole="R", Tags=[{"Key": "Patch Group", "Value": "late"}]))
    ungrouped = local_aws.agent(ssm, platform=("Amazon Linux", "Linux", "2"))
    snapshot_id = str(uuid.uuid4())

    got = grouped.get_deployable_patch_snapshot(snapshot_id)
    assert got["Product"] == "Ubuntu22.04" and got["SnapshotId"] == snapshot_id
    document = got["Snapshot"]
    assert document["patchGroup"] == "late" and document["operatingSystem"] == "UBUNTU"
    assert document["patchBaseline"]["BaselineId"] == baseline
    assert document["patchBaseline"]["RejectedPatches"] == ["linux-image-6.8"]

    default = ungrouped.get_deployable_patch_snapshot(str(uuid.uuid4()))["Snapshot"]
    assert default["operatingSystem"] == "AMAZON_LINUX_2"
    assert default["patchBaseline"]["BaselineId"] == ssm.get_default_patch_baseline(
        OperatingSystem="AMAZON_LINUX_2")["BaselineId"]


def test_inventory_association(local_aws, ssm):
    association = ssm.create_association(
        Name="AWS-GatherSoftwareInventory", AssociationName="fleetpatch-inventory",
        Targets=[{"Key": "InstanceIds", "Values": ["*"]}], ScheduleExpression="rate(30 minutes)",
        Parameters={"applications": ["Enabled"]})["AssociationDescription"]
    association_id = association["AssociationId"]
    with pytest.raises(ssm.exceptions.AssociationAlreadyExists):
        ssm.create_association(Name="AWS-GatherSoftwareInventory",
                               Targets=[{"Key": "InstanceIds", "Values": ["*"]}])
    agent = local_aws.agent(ssm)
    info = ssm.describe_instance_information()["InstanceInformationList"][0]
    assert info["AssociationStatus"] == "Pending"
    # The agent pulls its associations, runs them and reports each run.
    assert [a["AssociationId"] for a in agent.list_instance_associations()] == [association_id]
    agent.put_inventory([{"TypeName": "AWS:Application", "SchemaVersion": "1.1",
                          "CaptureTime": "2024-01-01T00:00:00Z",
                          "Content": [{"Name": "openssl", "Version": "3.0.2"}]}])
    info = ssm.describe_instance_information()["InstanceInformationList"][0]
    assert info["AssociationStatus"] == "Pending"  # inventory alone is not a reported run
    ran = datetime.now(UTC)
    agent.update_instance_association_status(association_id, "Success", ran, "collected")
    info = ssm.describe_instance_information()["InstanceInformationList"][0]
    assert info["AssociationStatus"] == "Success"
    assert abs(info["LastSuccessfulAssociationExecutionDate"] - ran) < timedelta(seconds=1)
    status = ssm.describe_instance_associations_status(InstanceId=agent.instance_id)
    [row] = status["InstanceAssociationStatusInfos"]
    assert (row["AssociationId"], row["Status"], row["Name"]) == (
        association_id, "Success", "AWS-GatherSoftwareInventory")
    with pytest.raises(botocore.exceptions.ClientError) as bad:
        agent.update_instance_association_status(association_id, "Done", ran)
    assert bad.value.response["Error"]["Code"] == "ValidationException"

    listed = ssm.list_associations(AssociationFilterList=[
        {"key": "Name", "value": "AWS-GatherSoftwareInventory"}])["Associations"]
    assert [a["AssociationId"] for a in listed] == [association_id]
    by_instance = ssm.list_associations(AssociationFilterList=[
        {"key": "InstanceId", "value": agent.instance_id}])["Associations"]
    assert [a["AssociationId"] for a in by_instance] == [association_id]
    described = ssm.describe_association(AssociationId=association_id)["AssociationDescription"]
    assert described["ScheduleExpression"] == "rate(30 minutes)"
    assert described["Overview"]["Status"] == "Success"
    ssm.delete_association(AssociationId=association_id)
    assert ssm.list_associations()["Associations"] == []
    with pytest.raises(ssm.exceptions.AssociationDoesNotExist):
        ssm.describe_association(AssociationId=association_id)


def test_an_association_overview_follows_new_instances_at_once_and_reported_runs_within_a_second(local_aws, ssm):
    """The Overview is an aggregate kept between DescribeAssociation calls (every agent sends one
    after its ping): a new instance counts at once, a reported run within OVERVIEW_FRESH."""
    import time

    from localclouds.aws.ssm_associations import OVERVIEW_FRESH

    association_id = ssm.create_association(
        Name="AWS-GatherSoftwareInventory", Targets=[{"Key": "InstanceIds", "Values": ["*"]}],
        ScheduleExpression="rate(30 minutes)")["AssociationDescription"]["AssociationId"]

    def counts() -> dict[str, int]:
        return ssm.describe_association(AssociationId=association_id)["AssociationDescription"]["Overview"][
            "AssociationStatusAggregatedCount"]

    first = local_aws.agent(ssm)
    assert counts() == {"Pending": 1}
    local_aws.agent(ssm)
    assert counts() == {"Pending": 2}  # at once, though the last count is fresh
    first.update_instance_association_status(association_id, "Success", datetime.now(UTC))
    time.sleep(OVERVIEW_FRESH + 0.1)
    assert counts() == {"Pending": 1, "Success": 1}

"""EC2 instances as managed nodes: an agent pings with its i- id and instance credentials."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from localclouds.aws import REGION
from localclouds.aws.agent_client import patch_summary_item


def _run(ec2, tags: dict[str, str]) -> str:
    answer = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
    return answer["Instances"][0]["InstanceId"]


def _ping(ssm_agent_ssm, instance_id: str, platform: str = "Amazon Linux") -> None:
    # UpdateInstanceInformation is not in boto3's model: the agent's model client sends it.
    ssm_agent_ssm.update_instance_information(
        InstanceId=instance_id, AgentVersion="3.3.1142.0", PlatformName=platform,
        PlatformType="Linux", PlatformVersion="2", ComputerName="ip-10-0-0-1", IPAddress="10.0.0.1")


@pytest.fixture
def agent_client(local_aws, account):
    """The agent's own botocore client (models shipped with localclouds.aws), with the account's
    credentials standing in for the instance profile's."""
    from localclouds.aws.agent_client import _session

    creds = account[1].get_credentials()
    return _session().create_client("ssm-agent", region_name=REGION, endpoint_url=local_aws.endpoint,
                                    aws_access_key_id=creds.access_key,
                                    aws_secret_access_key=creds.secret_key,
                                    aws_session_token=creds.token)


def test_an_ec2_instance_becomes_a_node_when_its_agent_pings(local_aws, account, ssm, agent_client):
    ec2 = local_aws.client("ec2", account[1])
    instance_id = _run(ec2, {"Name": "web-1", "Patch Group": "early"})
    assert ssm.describe_instance_information()["InstanceInformationList"] == []
    _ping(agent_client, instance_id)
    (row,) = ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])["InstanceInformationList"]
    assert row["ResourceType"] == "EC2Instance" and row["PingStatus"] == "Online"
    assert "ActivationId" not in row and row["PlatformName"] == "Amazon Linux"
    assert row["SourceType"] == "AWS::EC2::Instance" and row["Name"] == "web-1"
    by_tag = ssm.describe_instance_information(Filters=[{"Key": "tag:Patch Group", "Values": ["early"]}])
    assert [r["InstanceId"] for r in by_tag["InstanceInformationList"]] == [instance_id]
    # SSM does not tag EC2 instances as ManagedInstance resources.
    with pytest.raises(ClientError) as refused:
        ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance_id)
    assert refused.value.response["Error"]["Code"] == "InvalidResourceId"


def test_ec2_tags_follow_create_tags_and_termination_drops_the_node(local_aws, account, ssm, agent_client):
    ec2 = local_aws.client("ec2", account[1])
    instance_id = _run(ec2, {"Name": "db-1"})
    _ping(agent_client, instance_id)
    ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "Patch Group", "Value": "late"}])
    listed = ssm.describe_instance_information(Filters=[{"Key": "tag:Patch Group", "Values": ["late"]}])
    assert [r["InstanceId"] for r in listed["InstanceInformationList"]] == [instance_id]
    # Commands reach it through ec2messages like any node, targeted by its EC2 tag.
    command = ssm.send_command(DocumentName="AWS-RunShellScript", Parameters={"commands": ["echo hi"]},
                               Targets=[{"Key": "tag:Patch Group", "Values": ["late"]}])["Command"]
    assert command["TargetCount"] == 1
    ec2.terminate_instances(InstanceIds=[instance_id])
    assert ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])["InstanceInformationList"] == []


def test_patch_state_of_an_ec2_node(local_aws, account, ssm, agent_client):
    ec2 = local_aws.client("ec2", account[1])
    instance_id = _run(ec2, {"Patch Group": "early"})
    _ping(agent_client, instance_id)
    ssm_as_instance = local_aws.client("ssm", account[1])
    ssm_as_instance.put_inventory(InstanceId=instance_id, Items=[patch_summary_item(
        datetime.now(UTC), PatchGroup="early", BaselineId="pb-0123456789abcdef0", Operation="Scan",
        OperationStartTime="2025-01-01T00:00:00Z", OperationEndTime="2025-01-01T00:01:00Z",
        InstalledCount=3, MissingCount=2)])
    (state,) = ssm.describe_instance_patch_states(InstanceIds=[instance_id])["InstancePatchStates"]
    assert (state["InstalledCount"], state["MissingCount"], state["PatchGroup"]) == (3, 2, "early")


def test_unknown_or_foreign_instances_are_refused(local_aws, account, agent_client):
    with pytest.raises(ClientError) as missing:
        _ping(agent_client, "i-0123456789abcdef0")
    assert missing.value.response["Error"]["Code"] == "InvalidInstanceId"
    # An instance of another account is not this account's to ping for.
    _, other = local_aws.new_account()
    foreign = _run(local_aws.client("ec2", other), {"Name": f"x-{uuid.uuid4().hex[:6]}"})
    with pytest.raises(ClientError) as elsewhere:
        _ping(agent_client, foreign)
    assert elsewhere.value.response["Error"]["Code"] == "InvalidInstanceId"

"""Managed instances: listing, filters, pagination, ping status, tags, isolation."""

from __future__ import annotations

import botocore.exceptions
import pytest

from tests.unit.localaws.conftest import PING_TIMEOUT


def _ids(answer):
    return sorted(i["InstanceId"] for i in answer["InstanceInformationList"])


def test_filters_and_pagination(local_aws, ssm):
    early = ssm.create_activation(IamRole="R", RegistrationLimit=3,
                                  Tags=[{"Key": "Patch Group", "Value": "early"}])
    late = ssm.create_activation(IamRole="R", RegistrationLimit=3,
                                 Tags=[{"Key": "Patch Group", "Value": "late"}])
    linux = [local_aws.agent(ssm, early) for _ in range(3)]
    windows = [local_aws.agent(ssm, late, ("Microsoft Windows Server 2019 Datacenter", "Windows",
                                           "10.0.17763")) for _ in range(3)]
    everyone = sorted(a.instance_id for a in linux + windows)
    assert _ids(ssm.describe_instance_information()) == everyone

    by_tag = ssm.describe_instance_information(
        Filters=[{"Key": "tag:Patch Group", "Values": ["early"]}])
    assert _ids(by_tag) == sorted(a.instance_id for a in linux)
    by_key = ssm.describe_instance_information(Filters=[{"Key": "tag-key",
                                                         "Values": ["Patch Group"]}])
    assert _ids(by_key) == everyone
    by_platform = ssm.describe_instance_information(
        Filters=[{"Key": "PlatformTypes", "Values": ["Windows"]}])
    assert _ids(by_platform) == sorted(a.instance_id for a in windows)
    by_activation = ssm.describe_instance_information(
        Filters=[{"Key": "ActivationIds", "Values": [late["ActivationId"]]}])
    assert _ids(by_activation) == sorted(a.instance_id for a in windows)
    legacy = ssm.describe_instance_information(InstanceInformationFilterList=[
        {"key": "InstanceIds", "valueSet": [linux[0].instance_id, windows[0].instance_id]}])
    assert _ids(legacy) == sorted([linux[0].instance_id, windows[0].instance_id])
    typed = ssm.describe_instance_information(
        Filters=[{"Key": "ResourceType", "Values": ["ManagedInstance"]}])
    assert _ids(typed) == everyone

    seen, token = [], None
    while True:
        kwargs = {"MaxResults": 5, **({"NextToken": token} if token else {})}
        page = ssm.describe_instance_information(**kwargs)
        assert len(page["InstanceInformationList"]) <= 5
        seen += [i["InstanceId"] for i in page["InstanceInformationList"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == everyone and len(seen) == len(set(seen))

    with pytest.raises(ssm.exceptions.InvalidFilterKey):
        ssm.describe_instance_information(Filters=[{"Key": "Colour", "Values": ["red"]}])
    with pytest.raises(ssm.exceptions.InvalidInstanceInformationFilterValue):
        ssm.describe_instance_information(Filters=[{"Key": "PingStatus", "Values": ["Asleep"]}])


def test_ping_status_follows_last_ping(local_aws, ssm):
    agent = local_aws.agent(ssm)
    silent = local_aws.agent(ssm, ping=False)
    online = ssm.describe_instance_information(Filters=[{"Key": "PingStatus",
                                                         "Values": ["Online"]}])
    assert _ids(online) == [agent.instance_id]
    lost = ssm.describe_instance_information(Filters=[{"Key": "PingStatus",
                                                       "Values": ["ConnectionLost"]}])
    assert _ids(lost) == [silent.instance_id]
    row = next(i for i in ssm.describe_instance_information()["InstanceInformationList"]
               if i["InstanceId"] == agent.instance_id)
    assert row["PlatformName"] == "Ubuntu" and row["AgentVersion"] == "3.3.1142.0"
    assert row["LastPingDateTime"] >= row["RegistrationDate"]

    local_aws.advance(PING_TIMEOUT + 5)
    statuses = {i["InstanceId"]: i["PingStatus"]
                for i in ssm.describe_instance_information()["InstanceInformationList"]}
    assert statuses == {agent.instance_id: "ConnectionLost", silent.instance_id: "ConnectionLost"}
    agent.update_instance_information(AgentVersion="3.3.1142.0")
    statuses = {i["InstanceId"]: i["PingStatus"]
                for i in ssm.describe_instance_information()["InstanceInformationList"]}
    assert statuses[agent.instance_id] == "Online"


def test_tags_and_deregistration(local_aws, ssm):
    agent = local_aws.agent(ssm)
    ssm.add_tags_to_resource(ResourceType="ManagedInstance", ResourceId=agent.instance_id,
                             Tags=[{"Key": "Patch Group", "Value": "on-time"},
                                   {"Key": "owner", "Value": "ops"}])
    ssm.remove_tags_from_resource(ResourceType="ManagedInstance", ResourceId=agent.instance_id,
                                  TagKeys=["owner"])
    tags = ssm.list_tags_for_resource(ResourceType="ManagedInstance",
                                      ResourceId=agent.instance_id)["TagList"]
    assert tags == [{"Key": "Patch Group", "Value": "on-time"}]
    with pytest.raises(ssm.exceptions.InvalidResourceId):
        ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId="mi-0123456789abcdef0")

    ssm.deregister_managed_instance(InstanceId=agent.instance_id)
    assert ssm.describe_instance_information()["InstanceInformationList"] == []
    with pytest.raises(ssm.exceptions.InvalidInstanceId):
        ssm.deregister_managed_instance(InstanceId=agent.instance_id)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        agent.update_instance_information(AgentVersion="1")
    assert refused.value.response["Error"]["Code"] == "InvalidInstanceId"


def test_parameter_tags_still_reach_moto(local_aws, ssm):
    ssm.put_parameter(Name="/fleetpatch/test", Value="v", Type="String")
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId="/fleetpatch/test",
                             Tags=[{"Key": "k", "Value": "v"}])
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/fleetpatch/test")
    assert tags["TagList"] == [{"Key": "k", "Value": "v"}]


def test_accounts_are_isolated(local_aws, account):
    account_a, session_a = account
    account_b, session_b = local_aws.new_account()
    ssm_a = local_aws.client("ssm", session_a)
    ssm_b = local_aws.client("ssm", session_b)
    activation = ssm_a.create_activation(IamRole="R")
    assert ssm_b.describe_activations()["ActivationList"] == []
    with pytest.raises(ssm_b.exceptions.InvalidActivationId):
        ssm_b.delete_activation(ActivationId=activation["ActivationId"])

    agent = local_aws.agent(ssm_a, activation)
    assert _ids(ssm_a.describe_instance_information()) == [agent.instance_id]
    assert ssm_b.describe_instance_information()["InstanceInformationList"] == []
    # The agent's role credentials belong to the systems account that made the activation.
    sts = local_aws.client("sts", _agent_session(agent))
    assert sts.get_caller_identity()["Account"] == account_a
    assert local_aws.client("sts", session_b).get_caller_identity()["Account"] == account_b


def test_agent_credentials_cannot_act_for_another_instance(local_aws, ssm):
    first = local_aws.agent(ssm)
    second = local_aws.agent(ssm)
    # One botocore client per service serves every agent of the process; each call is still
    # signed with its own agent's credentials.
    assert first.ssm_agent._client is second.ssm_agent._client and first.messages._client is second.messages._client
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        first.ssm_agent.update_instance_information(InstanceId=second.instance_id)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    second.ssm_agent.update_instance_information(InstanceId=second.instance_id)


def _agent_session(agent):
    import boto3

    return boto3.Session(aws_access_key_id=agent.credentials.access_key_id,
                         aws_secret_access_key=agent.credentials.secret_access_key,
                         aws_session_token=agent.credentials.session_token)


def test_listing_by_ids_or_tags_pages_in_registration_order(local_aws, ssm):
    """Pages of a listing chosen by ids or tags (rows built for the page only) hold the same
    instances, in registration order, as one chosen by a computed field."""
    tagged = ssm.create_activation(IamRole="R", RegistrationLimit=6, Tags=[{"Key": "Patch Group", "Value": "early"}])
    agents = [local_aws.agent(ssm, tagged) for _ in range(6)]
    other = local_aws.agent(ssm)
    ids = [a.instance_id for a in agents]

    def listed(**kwargs) -> list[str]:
        found, token = [], None
        while True:
            page = ssm.describe_instance_information(MaxResults=5, **kwargs, **({"NextToken": token} if token else {}))
            found += [i["InstanceId"] for i in page["InstanceInformationList"]]
            token = page.get("NextToken")
            if not token:
                return found

    assert listed(Filters=[{"Key": "tag:Patch Group", "Values": ["early"]}]) == ids
    assert listed(Filters=[{"Key": "InstanceIds", "Values": [ids[4], other.instance_id, ids[1]]}]) == [
        ids[1], ids[4], other.instance_id]
    assert listed(Filters=[{"Key": "PingStatus", "Values": ["Online"]}]) == ids + [other.instance_id]
    assert listed(InstanceInformationFilterList=[{"key": "ActivationIds", "valueSet": [tagged["ActivationId"]]}]) == ids
    with pytest.raises(botocore.exceptions.ClientError) as bad:
        ssm.describe_instance_information(Filters=[{"Key": "PingStatus", "Values": ["Sleeping"]},
                                                   {"Key": "tag:Patch Group", "Values": ["early"]}])
    assert bad.value.response["Error"]["Code"] == "InvalidInstanceInformationFilterValue"

"""Hybrid activations and agent registration, over the real protocol."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import botocore.exceptions
import pytest

from localclouds.aws import REGION
from localclouds.aws.agent_client import AgentClient, InstanceKey, Registration


def _code(error: botocore.exceptions.ClientError) -> str:
    return error.response["Error"]["Code"]


def test_activation_lifecycle_and_filters(ssm):
    first = ssm.create_activation(IamRole="RoleA", DefaultInstanceName="web",
                                  RegistrationLimit=3, Description="first",
                                  Tags=[{"Key": "Patch Group", "Value": "early"}])
    second = ssm.create_activation(IamRole="RoleB", DefaultInstanceName="db")
    assert len(first["ActivationCode"]) >= 20 and first["ActivationId"] != second["ActivationId"]

    listed = ssm.describe_activations()["ActivationList"]
    by_id = {a["ActivationId"]: a for a in listed}
    assert set(by_id) == {first["ActivationId"], second["ActivationId"]}
    assert by_id[first["ActivationId"]]["RegistrationLimit"] == 3
    assert by_id[first["ActivationId"]]["RegistrationsCount"] == 0
    assert by_id[first["ActivationId"]]["Expired"] is False
    assert by_id[first["ActivationId"]]["Tags"] == [{"Key": "Patch Group", "Value": "early"}]
    assert by_id[second["ActivationId"]]["RegistrationLimit"] == 1

    for key, value, expected in (("IamRole", "RoleB", second), ("DefaultInstanceName", "web", first),
                                 ("ActivationIds", first["ActivationId"], first)):
        found = ssm.describe_activations(Filters=[{"FilterKey": key, "FilterValues": [value]}])
        assert [a["ActivationId"] for a in found["ActivationList"]] == [expected["ActivationId"]]

    page = ssm.describe_activations(MaxResults=1)
    assert len(page["ActivationList"]) == 1 and page["NextToken"]
    rest = ssm.describe_activations(MaxResults=1, NextToken=page["NextToken"])
    assert {page["ActivationList"][0]["ActivationId"], rest["ActivationList"][0]["ActivationId"]} \
        == set(by_id)
    assert "NextToken" not in rest

    ssm.delete_activation(ActivationId=second["ActivationId"])
    remaining = [a["ActivationId"] for a in ssm.describe_activations()["ActivationList"]]
    assert remaining == [first["ActivationId"]]
    with pytest.raises(ssm.exceptions.InvalidActivation):
        ssm.delete_activation(ActivationId=second["ActivationId"])
    with pytest.raises(ssm.exceptions.InvalidActivationId):
        ssm.delete_activation(ActivationId="00000000-0000-0000-0000-000000000000")


def test_tampered_next_token_is_refused(ssm):
    ssm.create_activation(IamRole="R")
    ssm.create_activation(IamRole="R")
    with pytest.raises(ssm.exceptions.InvalidNextToken):
        ssm.describe_activations(MaxResults=1, NextToken="not-a-token")


def test_registration_copies_tags_and_counts(local_aws, ssm):
    activation = ssm.create_activation(
        IamRole="SSMServiceRole", RegistrationLimit=2, DefaultInstanceName="vm",
        Tags=[{"Key": "Patch Group", "Value": "late"}, {"Key": "customer", "Value": "acme"}])
    agent = local_aws.agent(ssm, activation)
    assert agent.instance_id.startswith("mi-") and len(agent.instance_id) == 20
    tags = ssm.list_tags_for_resource(ResourceType="ManagedInstance",
                                      ResourceId=agent.instance_id)["TagList"]
    assert {t["Key"]: t["Value"] for t in tags} == {"Patch Group": "late", "customer": "acme"}
    described = ssm.describe_activations()["ActivationList"][0]
    assert described["RegistrationsCount"] == 1
    info = ssm.describe_instance_information()["InstanceInformationList"][0]
    assert info["ActivationId"] == activation["ActivationId"]
    assert info["IamRole"] == "SSMServiceRole" and info["Name"] == "vm"


def test_registration_limit_is_enforced(local_aws, ssm):
    activation = ssm.create_activation(IamRole="R", RegistrationLimit=1)
    client = AgentClient(local_aws.endpoint, REGION)
    client.register(activation["ActivationId"], activation["ActivationCode"])
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        client.register(activation["ActivationId"], activation["ActivationCode"])
    assert _code(refused.value) == "InvalidActivation"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_wrong_code_unknown_id_and_deleted_activation(local_aws, ssm):
    activation = ssm.create_activation(IamRole="R", RegistrationLimit=5)
    client = AgentClient(local_aws.endpoint, REGION)
    with pytest.raises(botocore.exceptions.ClientError) as wrong:
        client.register(activation["ActivationId"], "A" * 20)
    assert _code(wrong.value) == "InvalidActivation"
    with pytest.raises(botocore.exceptions.ClientError) as unknown:
        client.register("11111111-2222-3333-4444-555555555555", activation["ActivationCode"])
    assert _code(unknown.value) == "InvalidActivationId"
    ssm.delete_activation(ActivationId=activation["ActivationId"])
    with pytest.raises(botocore.exceptions.ClientError) as deleted:
        client.register(activation["ActivationId"], activation["ActivationCode"])
    assert _code(deleted.value) == "InvalidActivation"
    assert ssm.describe_instance_information()["InstanceInformationList"] == []


def test_expired_activation(local_aws, ssm):
    activation = ssm.create_activation(
        IamRole="R", ExpirationDate=datetime.now(UTC) + timedelta(hours=1))
    local_aws.advance(2 * 3600)
    listed = ssm.describe_activations()["ActivationList"][0]
    assert listed["Expired"] is True
    with pytest.raises(botocore.exceptions.ClientError) as expired:
        AgentClient(local_aws.endpoint, REGION).register(
            activation["ActivationId"], activation["ActivationCode"])
    assert _code(expired.value) == "ActivationExpired"


def test_activation_expiry_bounds(ssm):
    with pytest.raises(ssm.exceptions.ClientError) as past:
        ssm.create_activation(IamRole="R", ExpirationDate=datetime.now(UTC) - timedelta(hours=1))
    assert _code(past.value) == "ValidationException"
    with pytest.raises(ssm.exceptions.ClientError) as far:
        ssm.create_activation(IamRole="R", ExpirationDate=datetime.now(UTC) + timedelta(days=31))
    assert _code(far.value) == "ValidationException"


def test_role_token_requires_the_instance_key_and_fingerprint(local_aws, ssm):
    activation = ssm.create_activation(IamRole="R", RegistrationLimit=2)
    client = AgentClient(local_aws.endpoint, REGION)
    registration = client.register(activation["ActivationId"], activation["ActivationCode"])
    assert client.request_role_token(registration).access_key_id.startswith("ASIA")

    forged = Registration(registration.instance_id, REGION, registration.fingerprint,
                          InstanceKey.generate())
    with pytest.raises(botocore.exceptions.ClientError) as bad_key:
        client.request_role_token(forged)
    assert _code(bad_key.value) == "AccessDeniedException"

    moved = Registration(registration.instance_id, REGION, "another-machine", registration.key)
    with pytest.raises(botocore.exceptions.ClientError) as bad_fingerprint:
        client.request_role_token(moved)
    assert _code(bad_fingerprint.value) == "MachineFingerprintDoesNotMatch"

    ssm.deregister_managed_instance(InstanceId=registration.instance_id)
    with pytest.raises(botocore.exceptions.ClientError) as gone:
        client.request_role_token(registration)
    assert _code(gone.value) == "InvalidInstanceId"


def test_malformed_public_key_is_refused(local_aws, ssm):
    activation = ssm.create_activation(IamRole="R")
    client = AgentClient(local_aws.endpoint, REGION)
    bogus = InstanceKey(private_key="", public_key="bm90IGEga2V5")
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        client.register(activation["ActivationId"], activation["ActivationCode"], key=bogus)
    assert _code(refused.value) == "ValidationException"
    assert ssm.describe_activations()["ActivationList"][0]["RegistrationsCount"] == 0


def test_role_token_signature_covers_the_body(local_aws, ssm):
    """A signed RequestManagedInstanceRoleToken whose body is altered in flight is refused."""
    from localclouds.aws import agent_client

    activation = ssm.create_activation(IamRole="R")
    client = AgentClient(local_aws.endpoint, REGION)
    registration = client.register(activation["ActivationId"], activation["ActivationCode"])

    def tamper(request, **_):
        request.body = json.dumps({"Fingerprint": registration.fingerprint + " "}).encode()
        request.headers["Content-Length"] = str(len(request.body))

    events = agent_client._shared_client("ssm-agent", local_aws.endpoint, REGION).meta.events  # every agent's client
    events.register("before-send.ssm-agent.RequestManagedInstanceRoleToken", tamper)
    try:
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            client.request_role_token(registration)
    finally:
        events.unregister("before-send.ssm-agent.RequestManagedInstanceRoleToken", tamper)
    assert _code(refused.value) == "AccessDeniedException"
    assert client.request_role_token(registration).access_key_id.startswith("ASIA")


def test_malformed_members_are_refused_not_crashed(local_aws, ssm):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        local_aws.endpoint, method="POST",
        data=json.dumps({"Filters": "not-a-list"}).encode(),
        headers={"X-Amz-Target": "AmazonSSM.DescribeActivations",
                 "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    assert json.loads(refused.value.read())["__type"] == "SerializationException"

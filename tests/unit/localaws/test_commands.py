"""Run Command end to end: SendCommand -> GetMessages -> Acknowledge -> SendReply -> statuses."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest

from localclouds.aws.agent_client import reply_payload
from tests.unit.localaws.conftest import PING_TIMEOUT


def _invocations(ssm, command_id, details=False):
    rows = ssm.list_command_invocations(CommandId=command_id, Details=details)
    return {i["InstanceId"]: i for i in rows["CommandInvocations"]}


def _command(ssm, command_id):
    return ssm.list_commands(CommandId=command_id)["Commands"][0]


def _run(agent, status="Success", plugin="PatchLinux", output="done", code=0):
    """The agent's side of one command: poll, acknowledge, reply. Returns the message."""
    messages = agent.get_messages()
    assert len(messages) == 1
    message = messages[0]
    agent.acknowledge_message(message["MessageId"])
    agent.send_reply(message["MessageId"], reply_payload(status, plugin, output=output, code=code))
    return message


def test_patch_command_round_trip(local_aws, ssm):
    activation = ssm.create_activation(IamRole="R", RegistrationLimit=2,
                                       Tags=[{"Key": "Patch Group", "Value": "early"}])
    agents = [local_aws.agent(ssm, activation) for _ in range(2)]
    command = ssm.send_command(
        DocumentName="AWS-RunPatchBaseline", Parameters={"Operation": ["Install"]},
        Targets=[{"Key": "tag:Patch Group", "Values": ["early"]}], MaxConcurrency="100%",
        Comment="window 1")["Command"]
    assert command["TargetCount"] == 2 and command["Status"] == "InProgress"
    assert command["Parameters"]["Operation"] == ["Install"]
    assert command["Parameters"]["RebootOption"] == ["RebootIfNeeded"]
    assert {i["Status"] for i in _invocations(ssm, command["CommandId"]).values()} == {"Pending"}

    message = agents[0].get_messages()[0]
    payload = json.loads(message["Payload"])
    assert message["MessageId"] == f"aws.ssm.{command['CommandId']}.{agents[0].instance_id}"
    assert message["Topic"].startswith("aws.ssm.sendCommand.")
    assert payload["DocumentName"] == "AWS-RunPatchBaseline"
    assert payload["CommandId"] == command["CommandId"]
    assert payload["Parameters"]["Operation"] == ["Install"]
    assert [s["name"] for s in payload["DocumentContent"]["mainSteps"]] == ["PatchWindows",
                                                                            "PatchLinux"]
    assert agents[0].get_messages() == []  # invisible until its visibility timeout passes

    agents[0].acknowledge_message(message["MessageId"])
    assert _invocations(ssm, command["CommandId"])[agents[0].instance_id]["Status"] == "InProgress"
    agents[0].send_reply(message["MessageId"], reply_payload("InProgress", "PatchLinux"))
    assert _command(ssm, command["CommandId"])["Status"] == "InProgress"
    agents[0].send_reply(message["MessageId"],
                         reply_payload("Success", "PatchLinux", output="Installed 3 patches"))
    _run(agents[1], "Failed", output="yum failed", code=1)

    rows = _invocations(ssm, command["CommandId"], details=True)
    first, second = rows[agents[0].instance_id], rows[agents[1].instance_id]
    assert (first["Status"], first["StatusDetails"]) == ("Success", "Success")
    assert first["CommandPlugins"][0]["Name"] == "PatchLinux"
    assert first["CommandPlugins"][0]["Output"] == "Installed 3 patches"
    assert (second["Status"], second["StatusDetails"]) == ("Failed", "Failed")
    detail = ssm.get_command_invocation(CommandId=command["CommandId"],
                                        InstanceId=agents[1].instance_id)
    assert detail["ResponseCode"] == 1 and detail["StandardOutputContent"] == "yum failed"
    summary = _command(ssm, command["CommandId"])
    assert summary["Status"] == "Failed" and summary["ErrorCount"] == 1
    assert summary["CompletedCount"] == 2
    with pytest.raises(ssm.exceptions.InvocationDoesNotExist):
        ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId="mi-00000000000000000")


def test_max_concurrency_limits_dispatch(local_aws, ssm):
    activation = ssm.create_activation(IamRole="R", RegistrationLimit=3)
    agents = [local_aws.agent(ssm, activation) for _ in range(3)]
    command = ssm.send_command(DocumentName="AWS-RunShellScript",
                               Parameters={"commands": ["uptime"]},
                               InstanceIds=[a.instance_id for a in agents],
                               MaxConcurrency="1", MaxErrors="3")["Command"]
    order = []
    for _ in agents:
        ready = [a for a in agents if a.get_messages(visibility_timeout=0)]
        assert len(ready) == 1  # exactly one invocation may run at a time
        _run(ready[0], plugin="aws:runShellScript")
        order.append(ready[0].instance_id)
    assert sorted(order) == sorted(a.instance_id for a in agents)
    assert _command(ssm, command["CommandId"])["Status"] == "Success"


def test_max_errors_stops_the_rollout(local_aws, ssm):
    activation = ssm.create_activation(IamRole="R", RegistrationLimit=4)
    agents = [local_aws.agent(ssm, activation) for _ in range(4)]
    command = ssm.send_command(DocumentName="AWS-RunShellScript",
                               Parameters={"commands": ["false"]},
                               InstanceIds=[a.instance_id for a in agents],
                               MaxConcurrency="1", MaxErrors="25%")["Command"]  # 1 of 4
    failed = []
    for _ in range(2):
        ready = [a for a in agents if a.get_messages(visibility_timeout=0)]
        assert len(ready) == 1
        _run(ready[0], "Failed", plugin="aws:runShellScript", code=1)
        failed.append(ready[0].instance_id)
    rows = _invocations(ssm, command["CommandId"])
    rest = [i for i in rows if i not in failed]
    assert all(rows[i]["StatusDetails"] == "Failed" for i in failed)
    assert {(rows[i]["Status"], rows[i]["StatusDetails"]) for i in rest} == {
        ("Cancelled", "Terminated")}
    assert not any(a.get_messages(visibility_timeout=0) for a in agents)
    summary = _command(ssm, command["CommandId"])
    assert (summary["Status"], summary["StatusDetails"]) == ("Failed", "Failed")
    assert summary["ErrorCount"] == 2 and summary["CompletedCount"] == 4


def test_cancel_pending_and_running(local_aws, ssm):
    activation = ssm.create_activation(IamRole="R", RegistrationLimit=2)
    running, waiting = (local_aws.agent(ssm, activation) for _ in range(2))
    command = ssm.send_command(DocumentName="AWS-RunShellScript",
                               Parameters={"commands": ["sleep 600"]},
                               InstanceIds=[running.instance_id, waiting.instance_id])["Command"]
    started = running.get_messages()[0]
    running.acknowledge_message(started["MessageId"])
    ssm.cancel_command(CommandId=command["CommandId"])

    rows = _invocations(ssm, command["CommandId"])
    assert rows[waiting.instance_id]["Status"] == "Cancelled"
    assert rows[running.instance_id]["Status"] == "Cancelling"
    assert _command(ssm, command["CommandId"])["Status"] == "Cancelling"
    cancel = running.get_messages()[0]
    assert cancel["Topic"].startswith("aws.ssm.cancelCommand.")
    assert json.loads(cancel["Payload"]) == {"CancelMessageId": started["MessageId"]}
    assert waiting.get_messages(visibility_timeout=0) == []
    running.acknowledge_message(cancel["MessageId"])
    running.send_reply(started["MessageId"], reply_payload("Cancelled", "aws:runShellScript"))
    assert _invocations(ssm, command["CommandId"])[running.instance_id]["Status"] == "Cancelled"
    summary = _command(ssm, command["CommandId"])
    assert (summary["Status"], summary["StatusDetails"]) == ("Cancelled", "Cancelled")
    with pytest.raises(ssm.exceptions.InvalidCommandId):
        ssm.cancel_command(CommandId="00000000-0000-0000-0000-000000000000")


def test_delivery_and_execution_timeouts(local_aws, ssm):
    activation = ssm.create_activation(IamRole="R", RegistrationLimit=2)
    offline, slow = (local_aws.agent(ssm, activation) for _ in range(2))
    command = ssm.send_command(DocumentName="AWS-RunShellScript",
                               Parameters={"commands": ["x"], "executionTimeout": ["60"]},
                               InstanceIds=[offline.instance_id, slow.instance_id],
                               TimeoutSeconds=30, MaxErrors="1")["Command"]
    message = slow.get_messages()[0]
    slow.acknowledge_message(message["MessageId"])
    local_aws.advance(31)
    rows = _invocations(ssm, command["CommandId"])
    assert (rows[offline.instance_id]["Status"], rows[offline.instance_id]["StatusDetails"]) == (
        "TimedOut", "Delivery Timed Out")
    assert rows[slow.instance_id]["Status"] == "InProgress"
    assert offline.get_messages(visibility_timeout=0) == []  # too late: it will not run
    local_aws.advance(40)
    rows = _invocations(ssm, command["CommandId"])
    assert (rows[slow.instance_id]["Status"], rows[slow.instance_id]["StatusDetails"]) == (
        "TimedOut", "Execution Timed Out")
    summary = _command(ssm, command["CommandId"])
    assert summary["DeliveryTimedOutCount"] == 1 and summary["ErrorCount"] == 1
    assert summary["Status"] == "Failed" and summary["StatusDetails"] == "Incomplete"
    late = slow.send_reply(message["MessageId"], reply_payload("Success", "aws:runShellScript"))
    assert late["ReplyStatus"] == "NoActionTaken"


def test_delayed_while_connection_lost_and_undeliverable(local_aws, ssm):
    activation = ssm.create_activation(IamRole="R", RegistrationLimit=2)
    quiet, leaving = (local_aws.agent(ssm, activation) for _ in range(2))
    local_aws.advance(PING_TIMEOUT + 1)
    command = ssm.send_command(DocumentName="AWS-RunShellScript",
                               Parameters={"commands": ["x"]},
                               InstanceIds=[quiet.instance_id, leaving.instance_id])["Command"]
    rows = _invocations(ssm, command["CommandId"])
    assert {r["Status"] for r in rows.values()} == {"Delayed"}
    quiet.update_instance_information(AgentVersion="3")
    assert _invocations(ssm, command["CommandId"])[quiet.instance_id]["Status"] == "Pending"
    ssm.deregister_managed_instance(InstanceId=leaving.instance_id)
    row = _invocations(ssm, command["CommandId"])[leaving.instance_id]
    assert row["StatusDetails"] == "Undeliverable"


def test_send_command_validation(local_aws, ssm):
    agent = local_aws.agent(ssm)
    with pytest.raises(ssm.exceptions.InvalidInstanceId):
        ssm.send_command(DocumentName="AWS-RunShellScript", Parameters={"commands": ["x"]},
                         InstanceIds=["mi-0123456789abcdef0"])
    with pytest.raises(ssm.exceptions.InvalidDocument):
        ssm.send_command(DocumentName="AWS-NoSuchDocument", InstanceIds=[agent.instance_id])
    with pytest.raises(ssm.exceptions.InvalidParameters):
        ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=[agent.instance_id],
                         Parameters={"Operation": ["Uninstall"]})
    with pytest.raises(ssm.exceptions.InvalidParameters):
        ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[agent.instance_id])
    ids = [f"mi-{n:017x}" for n in range(51)]
    with pytest.raises(botocore.exceptions.ClientError) as too_many:
        ssm.send_command(DocumentName="AWS-RunShellScript", Parameters={"commands": ["x"]},
                         InstanceIds=ids)
    assert too_many.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as bad_limit:
        ssm.send_command(DocumentName="AWS-RunShellScript", Parameters={"commands": ["x"]},
                         InstanceIds=[agent.instance_id], MaxConcurrency="150%")
    assert bad_limit.value.response["Error"]["Code"] == "ValidationException"


def test_fail_message_and_foreign_destination(local_aws, ssm, account):
    agent = local_aws.agent(ssm)
    other = local_aws.agent(ssm)
    command = ssm.send_command(DocumentName="AWS-RunShellScript", Parameters={"commands": ["x"]},
                               InstanceIds=[agent.instance_id])["Command"]
    with pytest.raises(botocore.exceptions.ClientError) as foreign:
        other.messages.get_messages(Destination=agent.instance_id,
                                    MessagesRequestId="0123456789abcdef0123")
    assert foreign.value.response["Error"]["Code"] == "AuthorizationFailureException"
    message = agent.get_messages()[0]
    agent.fail_message(message["MessageId"], "NoHandlerExists")
    row = _invocations(ssm, command["CommandId"])[agent.instance_id]
    assert (row["Status"], row["StatusDetails"]) == ("Failed", "Failed")
    with pytest.raises(botocore.exceptions.ClientError) as unknown:
        agent.acknowledge_message("aws.ssm.nonexistent-message-id")
    assert unknown.value.response["Error"]["Code"] == "InvalidMessageIdException"

"""Fault injection seen through botocore, and the package's describe/worker_env contract."""

from __future__ import annotations

import threading
import time
import urllib.error
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from localclouds.aws import describe, worker_env


def test_throttling_raises_the_real_exception(local_aws, ssm):
    local_aws.control("/__fleetpatch/faults", "POST",
                      {"service": "ssm", "action": "SendCommand", "throttle_rate": 1.0})
    with pytest.raises(botocore.exceptions.ClientError) as throttled:
        ssm.send_command(DocumentName="AWS-RunShellScript", Parameters={"commands": ["x"]},
                         Targets=[{"Key": "tag:none", "Values": ["none"]}])
    error = throttled.value
    assert error.response["Error"]["Code"] == "ThrottlingException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert isinstance(error, ssm.exceptions.ThrottlingException)
    # Other actions are untouched.
    assert ssm.describe_activations()["ActivationList"] == []


def test_botocore_retries_through_counted_throttling(local_aws, account):
    local_aws.control("/__fleetpatch/faults", "POST",
                      {"service": "ssm", "action": "*", "throttle_rate": 1.0, "count": 2})
    retrying = local_aws.client("ssm", account[1],
                                Config(retries={"mode": "standard", "max_attempts": 4}))
    answer = retrying.describe_activations()
    assert answer["ResponseMetadata"]["RetryAttempts"] == 2
    assert local_aws.control("/__fleetpatch/faults", "GET")["rules"] == []


def test_query_protocol_throttling_and_latency(local_aws):
    local_aws.control("/__fleetpatch/faults", "POST",
                      {"service": "sts", "action": "GetCallerIdentity", "throttle_rate": 1.0,
                       "count": 1})
    sts = local_aws.client("sts")
    with pytest.raises(botocore.exceptions.ClientError) as throttled:
        sts.get_caller_identity()
    assert throttled.value.response["Error"]["Code"] == "Throttling"
    assert sts.get_caller_identity()["Account"] == "123456789012"

    local_aws.control("/__fleetpatch/faults", "POST",
                      {"service": "organizations", "action": "*", "latency_ms": 300})
    started = time.monotonic()
    local_aws.client("organizations").describe_organization()
    assert time.monotonic() - started >= 0.3
    local_aws.control("/__fleetpatch/faults", "DELETE")
    assert local_aws.control("/__fleetpatch/faults", "GET")["rules"] == []


def test_access_denied_on_demand(local_aws, ssm):
    local_aws.control("/__fleetpatch/faults", "POST",
                      {"service": "ssm", "action": "DescribeActivations", "error": "AccessDenied", "count": 1})
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        ssm.describe_activations()
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert ssm.describe_activations()["ActivationList"] == []  # count 1: the next call passes
    local_aws.control("/__fleetpatch/faults", "POST", {"service": "sts", "error": "AccessDenied", "count": 1})
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        local_aws.client("sts").get_caller_identity()
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_hold_answers_after_the_action_took_effect(local_aws, ssm):
    """``hold_ms``: the activation exists while its creator still waits for the answer (a caller
    that dies meanwhile has made it without learning so)."""
    local_aws.control("/__fleetpatch/faults", "POST",
                      {"service": "ssm", "action": "CreateActivation", "hold_ms": 1500, "count": 1})
    seen: list[int] = []
    caller = threading.Thread(target=lambda: ssm.create_activation(IamRole="r", Description="held"))
    started = time.monotonic()
    caller.start()
    while caller.is_alive() and not seen:
        seen += [1 for a in ssm.describe_activations()["ActivationList"] if a.get("Description") == "held"]
        time.sleep(0.1)
    caller.join()
    assert seen, "the activation was not visible while its answer was held"
    assert time.monotonic() - started >= 1.5
    started = time.monotonic()
    ssm.create_activation(IamRole="r")  # count 1: the next one is answered at once
    assert time.monotonic() - started < 1.0


def test_malformed_fault_rules_are_refused(local_aws):
    for rule in ({"throttle_rate": 1}, {"service": "ssm", "throttle_rate": 2}, {"service": "ssm", "hold_ms": -5},
                 {"service": "ssm", "error": "NoSuchThing"},
                 {"service": "ssm", "latency_ms": -1}, {"service": "ssm", "count": 0}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            local_aws.control("/__fleetpatch/faults", "POST", rule)
        assert refused.value.code == 400


def test_describe_and_worker_env(local_aws, tmp_path):
    entry = describe(tmp_path, "127.0.0.1", 8701)
    assert entry == {"endpoint": "http://127.0.0.1:8701", "region": "us-east-1",
                     "management_account": "123456789012"}
    env = worker_env(tmp_path, "127.0.0.1", 8701)
    assert env["FLEETPATCH_AWS__ENDPOINT_URL"] == "http://127.0.0.1:8701"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    # The dummy credentials are the management account's.
    host, port = local_aws.endpoint.rsplit(":", 1)
    env = worker_env(Path(tmp_path), host.removeprefix("http://"), int(port))
    session = boto3.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                            region_name=env["AWS_DEFAULT_REGION"])
    sts = session.client("sts", endpoint_url=env["FLEETPATCH_AWS__ENDPOINT_URL"])
    assert sts.get_caller_identity()["Account"] == entry["management_account"]


def test_everything_else_is_still_moto(local_aws, account):
    s3 = local_aws.client("s3", account[1])
    s3.create_bucket(Bucket="fleetpatch-reports-test")
    payload = b"x" * (9 * 1024 * 1024)  # larger than any body the dispatcher itself parses
    s3.put_object(Bucket="fleetpatch-reports-test", Key="report.json", Body=payload)
    got = s3.get_object(Bucket="fleetpatch-reports-test", Key="report.json")["Body"].read()
    assert got == payload
    ssm = local_aws.client("ssm", account[1])
    ssm.put_parameter(Name="/fleetpatch/links/gcp/p1", Value="{}", Type="String")
    assert ssm.get_parameter(Name="/fleetpatch/links/gcp/p1")["Parameter"]["Value"] == "{}"


def test_aws_managed_policies_exist_in_every_account(local_aws, account):
    iam = local_aws.client("iam", account[1])
    iam.create_role(RoleName="ssm-service", AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}')
    arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
    iam.attach_role_policy(RoleName="ssm-service", PolicyArn=arn)
    attached = iam.list_attached_role_policies(RoleName="ssm-service")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [arn]
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        iam.attach_role_policy(RoleName="ssm-service", PolicyArn="arn:aws:iam::aws:policy/NoSuchPolicy")
    assert missing.value.response["Error"]["Code"] == "NoSuchEntity"

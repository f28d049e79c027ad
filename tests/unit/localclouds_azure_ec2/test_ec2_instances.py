"""clouds/ec2/instances.py against a plain moto server, configured by settings only."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from clouds.ec2.instances import Ec2AccessDenied, Ec2Instances, Ec2RequestRefused, map_aws_error
from config.settings import Settings
from contracts.errors import ErrorType, IdentityRefused, InstanceRefused, TransientCloudError
from contracts.providers import Provider
from tests.unit.localclouds_azure_ec2.conftest import account_session, new_account, run_instance
from tests.unit.localclouds_azure_ec2.procs import free_port


def worker_session() -> boto3.session.Session:
    """The ec2 worker's own credentials (moto maps unknown keys to account 123456789012)."""
    return boto3.session.Session(
        aws_access_key_id="AKIAEC2WORKER0000000", aws_secret_access_key="x"
    )


@pytest.fixture
def instances(moto: str, monkeypatch: pytest.MonkeyPatch) -> Ec2Instances:
    monkeypatch.setenv("FLEETPATCH_AWS__ENDPOINT_URL", moto)  # what the local AWS's worker_env sets
    monkeypatch.delenv("FLEETPATCH_EC2__ENDPOINT_URL", raising=False)
    return Ec2Instances.from_settings(Settings(), session_factory=worker_session)


def role(account: str) -> str:
    return f"arn:aws:iam::{account}:role/fleetpatch-customer"


def _ec2(moto: str, account: str, region: str) -> Any:
    return account_session(moto, account).client("ec2", region_name=region, endpoint_url=moto)


def test_describe_through_the_customer_role(moto: str, instances: Ec2Instances) -> None:
    account = new_account()
    tags = {"Name": "db-3", "rackspace-addon-patching": "true"}
    inst = run_instance(moto, account, "us-west-2", tags=tags)
    meta = instances.describe(account, "us-west-2", inst["InstanceId"], role(account))
    assert meta.provider == Provider.AWS
    assert meta.cloud_account == account
    assert meta.instance_id == inst["InstanceId"]
    assert meta.name == "db-3"
    assert meta.labels == tags
    assert meta.state == "running"
    assert meta.region == "us-west-2"


def test_describe_in_the_workers_own_account(moto: str, instances: Ec2Instances) -> None:
    inst = run_instance(moto, "123456789012", "eu-west-1")
    meta = instances.describe("123456789012", "eu-west-1", inst["InstanceId"], None)
    assert meta.name == inst["InstanceId"] and meta.labels == {}


def test_instances_of_other_accounts_are_not_found(moto: str, instances: Ec2Instances) -> None:
    account, other = new_account(), new_account()
    inst = run_instance(moto, other, "us-east-1")
    with pytest.raises(InstanceRefused) as refused:  # the role only sees its own account
        instances.describe(account, "us-east-1", inst["InstanceId"], role(account))
    assert refused.value.type == ErrorType.INSTANCE_NOT_FOUND


def test_owner_must_be_the_identity_account(moto: str, instances: Ec2Instances) -> None:
    inst = run_instance(moto, "123456789012", "us-east-1")
    other = new_account()
    with pytest.raises(IdentityRefused) as refused:  # read with the worker's (other) credentials
        Ec2Instances(session_factory=worker_session, endpoint_url=moto).describe(
            other, "us-east-1", inst["InstanceId"]
        )
    assert refused.value.type == ErrorType.IDENTITY_INSTANCE_MISMATCH


def test_missing_instance_is_not_found(instances: Ec2Instances) -> None:
    account = new_account()
    with pytest.raises(InstanceRefused) as refused:
        instances.describe(account, "us-east-1", "i-0123456789abcdef0", role(account))
    assert refused.value.type == ErrorType.INSTANCE_NOT_FOUND


@pytest.mark.parametrize("action", ["stop_instances", "terminate_instances"])
def test_only_pending_or_running_instances_enroll(
    moto: str, instances: Ec2Instances, action: str
) -> None:
    account = new_account()
    inst = run_instance(moto, account, "us-east-1")
    getattr(_ec2(moto, account, "us-east-1"), action)(InstanceIds=[inst["InstanceId"]])
    with pytest.raises(InstanceRefused) as refused:
        instances.describe(account, "us-east-1", inst["InstanceId"], role(account))
    assert refused.value.type == ErrorType.INSTANCE_NOT_RUNNING
    assert "stopped" in refused.value.reason or "terminated" in refused.value.reason


def test_tag_instance_adds_the_patch_group(moto: str, instances: Ec2Instances) -> None:
    account = new_account()
    inst = run_instance(moto, account, "us-west-2", tags={"Name": "web", "Patch Group": "old"})
    instances.tag_instance(
        account, "us-west-2", inst["InstanceId"], role(account), {"Patch Group": "fleetpatch-early"}
    )
    labels = instances.describe(account, "us-west-2", inst["InstanceId"], role(account)).labels
    assert labels == {"Name": "web", "Patch Group": "fleetpatch-early"}


@pytest.mark.parametrize(
    "tags", [{"aws:reserved": "x"}, {"": "x"}, {"k" * 129: "x"}, {"k": "v" * 257}]
)
def test_tags_ec2_would_refuse_are_refused_first(
    instances: Ec2Instances, tags: dict[str, str]
) -> None:
    with pytest.raises(Ec2RequestRefused):
        instances.tag_instance("123456789012", "us-east-1", "i-0123456789abcdef0", None, tags)


def test_role_in_another_account_is_a_configuration_error(instances: Ec2Instances) -> None:
    with pytest.raises(Ec2RequestRefused):
        instances.describe("111111111111", "us-east-1", "i-0123456789abcdef0", role("222222222222"))
    with pytest.raises(Ec2RequestRefused):
        instances.describe(
            "111111111111", "us-east-1", "i-0123456789abcdef0", "arn:aws:iam::111111111111:user/x"
        )


@pytest.mark.parametrize(
    ("account", "region", "instance_id"),
    [
        ("12345678901", "us-east-1", "i-0123456789abcdef0"),
        ("123456789012", "us_east_1", "i-0123456789abcdef0"),
        ("123456789012", "us-east-1", "i-0123"),
        ("123456789012\n", "us-east-1", "i-0123456789abcdef0"),
        ("123456789012", "us-east-1", "i-0123456789abcdef0\n"),
    ],
)
def test_malformed_ids_are_refused(
    instances: Ec2Instances, account: str, region: str, instance_id: str
) -> None:
    with pytest.raises(IdentityRefused) as refused:
        instances.describe(account, region, instance_id, None)
    assert refused.value.type == ErrorType.IDENTITY_MALFORMED


def test_unreachable_endpoint_is_transient() -> None:
    dead = Ec2Instances(
        session_factory=worker_session,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1),
    )
    with pytest.raises(TransientCloudError) as transient:
        dead.describe("123456789012", "us-east-1", "i-0123456789abcdef0")
    assert transient.value.retryable


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("RequestLimitExceeded", 503, TransientCloudError),
        ("Throttling", 400, TransientCloudError),
        ("InternalError", 500, TransientCloudError),
        ("Whatever", 502, TransientCloudError),
        ("UnauthorizedOperation", 403, Ec2AccessDenied),
        ("AccessDenied", 403, Ec2AccessDenied),
        ("InvalidInstanceID.Malformed", 400, InstanceRefused),
        ("InvalidParameterValue", 400, Ec2RequestRefused),
    ],
)
def test_error_mapping(code: str, status: int, kind: type[Exception]) -> None:
    mapped = map_aws_error(_client_error(code, status), "x")
    assert type(mapped) is kind
    assert mapped.retryable is (kind is TransientCloudError)


def test_network_error_mapping() -> None:
    assert isinstance(
        map_aws_error(EndpointConnectionError(endpoint_url="http://x"), "x"), TransientCloudError
    )


def test_list_instances_sees_every_state_and_tag_change(moto: str, instances: Ec2Instances) -> None:
    """What reconcile reads: describe-instances through the link's role, terminated ones included."""
    account = new_account()
    kept = run_instance(moto, account, "us-east-2", tags={"Name": "kept", "rackspace-addon-patching": "true"})
    gone = run_instance(moto, account, "us-east-2", tags={"Name": "gone"})
    ec2 = _ec2(moto, account, "us-east-2")
    ec2.create_tags(Resources=[kept["InstanceId"]], Tags=[{"Key": "rackspace-addon-patching-patchgroup", "Value": "late"}])
    ec2.delete_tags(Resources=[kept["InstanceId"]], Tags=[{"Key": "Name"}])
    ec2.terminate_instances(InstanceIds=[gone["InstanceId"]])
    listed = {v.instance_id: v for v in instances.list_instances(account, "us-east-2", role(account))}
    assert listed[kept["InstanceId"]].labels == {
        "rackspace-addon-patching": "true", "rackspace-addon-patching-patchgroup": "late"
    }
    assert listed[kept["InstanceId"]].state == "running" and listed[kept["InstanceId"]].region == "us-east-2"
    assert listed[gone["InstanceId"]].state in ("shutting-down", "terminated")
    other = new_account()
    assert instances.list_instances(other, "us-east-2", role(other)) == []

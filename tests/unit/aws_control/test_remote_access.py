"""Remote access: a systems account prepared for Session Manager, and `fleetpatch session start`'s
plan, against the real local AWS."""

from __future__ import annotations

import json
import shlex
from typing import Any

import boto3
import pytest

from clouds.aws.patch_train import PatchTrainStore
from clouds.aws.remote_access import PREFERENCES_DOCUMENT, RemoteAccess, session_preferences
from clouds.aws.session_start import find_account, plan_session
from clouds.aws.sessions import AwsSessions
from config.settings import AwsSettings
from contracts.enrollment import AccountRef
from tests.support.local_aws import LocalAws

BUCKET = "fleetpatch-patching-{account_id}-{region}"


def _remote(sessions: AwsSessions) -> RemoteAccess:
    return RemoteAccess(sessions, PatchTrainStore(sessions, BUCKET))


def _ssm(local_aws: LocalAws, account: AccountRef) -> Any:
    return local_aws.client("ssm", local_aws.assume(account.account_id))


def test_enable_sets_the_advanced_tier_and_logged_sessions_once(
    local_aws: LocalAws, sessions: AwsSessions, systems_account: AccountRef
) -> None:
    ssm = _ssm(local_aws, systems_account)
    first = _remote(sessions).enable(systems_account)
    assert first.changed == ["activation-tier", "session-preferences"]
    bucket = f"fleetpatch-patching-{systems_account.account_id}-us-east-1"
    assert (first.activation_tier, first.log_bucket) == ("advanced", bucket)
    tier = ssm.get_service_setting(SettingId="/ssm/managed-instance/activation-tier")["ServiceSetting"]["SettingValue"]
    assert tier == "advanced"
    document = ssm.get_document(Name=PREFERENCES_DOCUMENT)
    assert document["DocumentType"] == "Session"
    inputs = json.loads(document["Content"])["inputs"]
    assert (inputs["s3BucketName"], inputs["s3KeyPrefix"], inputs["s3EncryptionEnabled"]) == (bucket, "sessions/", True)
    local_aws.client("s3", local_aws.assume(systems_account.account_id)).head_bucket(Bucket=bucket)
    # Again: nothing left to change.
    again = _remote(sessions).enable(systems_account)
    assert again.changed == [] and again.preferences_version == first.preferences_version


def test_enable_repairs_changed_preferences(local_aws: LocalAws, sessions: AwsSessions, systems_account: AccountRef) -> None:
    ssm = _ssm(local_aws, systems_account)
    stale = session_preferences("someone-elses-bucket")
    ssm.create_document(Name=PREFERENCES_DOCUMENT, Content=json.dumps(stale), DocumentType="Session", DocumentFormat="JSON")
    state = _remote(sessions).enable(systems_account)
    assert "session-preferences" in state.changed and state.preferences_version == "2"
    inputs = json.loads(ssm.get_document(Name=PREFERENCES_DOCUMENT)["Content"])["inputs"]
    assert inputs["s3BucketName"] == state.log_bucket


def _env_session(plan_env: dict[str, str]) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=plan_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=plan_env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=plan_env["AWS_SESSION_TOKEN"],
        region_name=plan_env["AWS_REGION"],
    )


def test_session_plan_finds_the_account_and_starts_with_credentials_from_the_environment(
    local_aws: LocalAws, sessions: AwsSessions, systems_account: AccountRef
) -> None:
    settings = AwsSettings(endpoint_url=local_aws.endpoint)
    ssm = _ssm(local_aws, systems_account)
    node = local_aws.agent(ssm).instance_id
    other, _ = local_aws.new_account()
    assert find_account(sessions, settings, node, [other, systems_account.account_id, other], "us-east-1") == systems_account.account_id
    assert find_account(sessions, settings, "mi-0123456789abcdef0", [other, systems_account.account_id], "us-east-1") is None
    _remote(sessions).enable(systems_account)
    plan = plan_session(sessions, settings, node, systems_account.account_id, "us-east-1")
    assert plan.command() == ["aws", "ssm", "start-session", "--target", node, "--region", "us-east-1"]
    assert plan.environment["AWS_ENDPOINT_URL_SSM"] == local_aws.endpoint
    # The printed form exports the credentials; the command line itself holds none of them.
    lines = plan.printable().splitlines()
    assert lines[-1] == shlex.join(plan.command())
    for secret in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"):
        assert plan.environment[secret] not in lines[-1]
        assert f"export {secret}={shlex.quote(plan.environment[secret])}" in lines
    assert plan.environment["AWS_SECRET_ACCESS_KEY"] not in repr(plan)
    # What `aws ssm start-session` does first, with exactly that environment: StartSession.
    started = _env_session(plan.environment).client("ssm", endpoint_url=plan.environment["AWS_ENDPOINT_URL_SSM"]).start_session(Target=node)
    assert started["SessionId"] and started["TokenValue"] and started["StreamUrl"].startswith("wss://")


def test_without_an_endpoint_the_environment_names_none() -> None:
    class _Sts:
        def assume_role(self, **kw: Any) -> dict[str, Any]:
            assert kw["RoleArn"] == "arn:aws:iam::111122223333:role/FleetpatchOperator"
            return {"Credentials": {"AccessKeyId": "ASIA1", "SecretAccessKey": "s", "SessionToken": "t"}}

    class _Sessions:
        def management(self, service: str) -> Any:
            return _Sts()

    settings = AwsSettings(operator_role_name="FleetpatchOperator")
    plan = plan_session(_Sessions(), settings, "mi-0123456789abcdef0", "111122223333", "eu-west-1")  # type: ignore[arg-type]
    assert "AWS_ENDPOINT_URL_SSM" not in plan.environment
    assert plan.environment["AWS_REGION"] == "eu-west-1"

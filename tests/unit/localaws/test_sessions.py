"""Session Manager on the local AWS: service settings and sessions, driven over the wire."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.local_aws import REGION, LocalAws

TIER = "/ssm/managed-instance/activation-tier"


def _tier_arn(account_id: str) -> str:
    return f"arn:aws:ssm:{REGION}:{account_id}:servicesetting{TIER}"


def _code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return err.value.response["Error"]["Code"]


def test_activation_tier_defaults_to_standard_and_only_goes_up(ssm: Any, account: tuple[str, boto3.Session]) -> None:
    account_id = account[0]
    setting = ssm.get_service_setting(SettingId=_tier_arn(account_id))["ServiceSetting"]
    assert (setting["SettingId"], setting["SettingValue"], setting["Status"]) == (TIER, "standard", "Default")
    assert setting["ARN"] == _tier_arn(account_id)
    ssm.update_service_setting(SettingId=TIER, SettingValue="advanced")  # the short id is accepted too
    setting = ssm.get_service_setting(SettingId=TIER)["ServiceSetting"]
    assert (setting["SettingValue"], setting["Status"]) == ("advanced", "Customized")
    assert "LastModifiedDate" in setting
    for call in (lambda: ssm.update_service_setting(SettingId=TIER, SettingValue="standard"),
                 lambda: ssm.reset_service_setting(SettingId=TIER)):
        with pytest.raises(ClientError) as caught:
            call()
        assert _code(caught) == "ValidationException"
    with pytest.raises(ClientError) as caught:
        ssm.update_service_setting(SettingId=TIER, SettingValue="premium")
    assert _code(caught) == "ValidationException"
    with pytest.raises(ClientError) as caught:
        ssm.get_service_setting(SettingId="/ssm/no/such/setting")
    assert _code(caught) == "ServiceSettingNotFound"


def test_settings_are_per_account(local_aws: LocalAws, ssm: Any) -> None:
    ssm.update_service_setting(SettingId=TIER, SettingValue="advanced")
    other = local_aws.client("ssm", local_aws.new_account()[1])
    assert other.get_service_setting(SettingId=TIER)["ServiceSetting"]["SettingValue"] == "standard"


def test_a_hybrid_node_accepts_sessions_only_on_the_advanced_tier(local_aws: LocalAws, ssm: Any) -> None:
    node = local_aws.agent(ssm).instance_id
    with pytest.raises(ClientError) as caught:
        ssm.start_session(Target=node)
    assert _code(caught) == "BadRequest"
    ssm.update_service_setting(SettingId=TIER, SettingValue="advanced")
    started = ssm.start_session(Target=node)
    assert started["SessionId"] and len(started["TokenValue"]) > 64
    assert started["StreamUrl"].startswith(f"wss://ssmmessages.{REGION}.amazonaws.com/v1/data-channel/{started['SessionId']}?")
    active = ssm.describe_sessions(State="Active")["Sessions"]
    assert [(s["SessionId"], s["Target"], s["Status"]) for s in active] == [(started["SessionId"], node, "Connected")]
    assert ssm.terminate_session(SessionId=started["SessionId"])["SessionId"] == started["SessionId"]
    assert ssm.describe_sessions(State="Active")["Sessions"] == []
    assert [s["Status"] for s in ssm.describe_sessions(State="History")["Sessions"]] == ["Terminated"]


def test_no_session_to_a_node_that_is_unknown_or_offline(local_aws: LocalAws, ssm: Any) -> None:
    ssm.update_service_setting(SettingId=TIER, SettingValue="advanced")
    offline = local_aws.agent(ssm, ping=False).instance_id
    for target in ("mi-0123456789abcdef0", offline):
        with pytest.raises(ClientError) as caught:
            ssm.start_session(Target=target)
        assert _code(caught) == "TargetNotConnected"
    # Another account's node is not reachable from this one.
    other = local_aws.client("ssm", local_aws.new_account()[1])
    node = local_aws.agent(ssm).instance_id
    with pytest.raises(ClientError) as caught:
        other.start_session(Target=node)
    assert _code(caught) == "TargetNotConnected"

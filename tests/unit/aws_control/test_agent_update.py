"""The AWS-UpdateSSMAgent association of every systems account, against the local AWS."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from clouds.aws.sessions import AwsSessions
from clouds.aws.ssm_config import AGENT_UPDATE_ASSOCIATION, SsmConfigurator
from config.settings import AwsSettings
from contracts.enrollment import AccountRef


def _agent_update(sessions: AwsSessions, account: AccountRef) -> list[dict]:
    ssm = sessions.in_account("ssm", account.role_arn)
    return ssm.list_associations(AssociationFilterList=[{"key": "Name", "value": "AWS-UpdateSSMAgent"}])["Associations"]


def test_every_systems_account_keeps_its_agents_current(sessions: AwsSessions, systems_account: AccountRef) -> None:
    first = SsmConfigurator(sessions).apply(systems_account, version=2)
    listed = _agent_update(sessions, systems_account)
    assert [(a["AssociationId"], a["AssociationName"], a["ScheduleExpression"]) for a in listed] == [
        (first.agent_update_association_id, AGENT_UPDATE_ASSOCIATION, "rate(14 days)")
    ]
    assert listed[0]["Targets"] == [{"Key": "InstanceIds", "Values": ["*"]}]
    # Applied again: the same association; a changed cadence is written to it, not a second one.
    again = SsmConfigurator(sessions).apply(systems_account, version=2)
    assert again.agent_update_association_id == first.agent_update_association_id
    weekly = SsmConfigurator(sessions, "cron(0 3 ? * SUN *)").apply(systems_account, version=3)
    assert weekly.agent_update_association_id == first.agent_update_association_id
    listed = _agent_update(sessions, systems_account)
    assert [a["ScheduleExpression"] for a in listed] == ["cron(0 3 ? * SUN *)"]


@pytest.mark.parametrize("bad", ["every day", "rate(", ""])
def test_the_cadence_setting_is_a_schedule_expression(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AwsSettings(agent_update_schedule=bad)
    assert "agent_update_schedule" in str(caught.value)

"""``activate_new_instance``: trust on first use and the activation in one aws activity, through
boto3 to the local AWS (EnrollVm's short path calls it instead of a look-up, then CreateActivation)."""

from __future__ import annotations

import pytest

from activities.aws import AwsActivities
from clouds.aws.sessions import AwsSessions
from clouds.aws.ssm_config import SERVICE_ROLE, SsmConfigurator
from contracts.enrollment import TAG_INSTANCE_KEY, AccountRef, ActivationRequest
from contracts.enrollment_setup import NewInstanceActivation
from contracts.errors import ErrorType, FleetpatchError
from contracts.sealing import unseal
from tests.support.local_aws import LocalAws

KEY = "k" * 44


def _request(account: AccountRef, instance_key: str, run: str) -> NewInstanceActivation:
    return NewInstanceActivation(instance_key=instance_key, activation=ActivationRequest(
        account=account, service_role=SERVICE_ROLE, default_instance_name="web-1", idempotency_key=f"enroll/{run}",
        tags={"Patch Group": "early", TAG_INSTANCE_KEY: instance_key}, expiry_seconds=3600))


def test_a_new_instance_gets_its_activation_and_an_enrolled_one_is_refused(
    local_aws: LocalAws, sessions: AwsSessions, systems_account: AccountRef
) -> None:
    SsmConfigurator(sessions).ensure_service_role(systems_account)
    activities = AwsActivities(sessions._settings, sessions, sealing_key=KEY)
    ssm = sessions.in_account("ssm", systems_account.role_arn)

    first = activities.activate_new_instance(_request(systems_account, "proj/1", "run-1"))
    retried = activities.activate_new_instance(_request(systems_account, "proj/1", "run-1"))  # a retried attempt
    listed = [a["ActivationId"] for a in ssm.describe_activations()["ActivationList"]]
    assert listed == [retried.id] and first.code != unseal(KEY, first.code)  # sealed for its way through history

    local_aws.agent(ssm, {"ActivationId": retried.id, "ActivationCode": unseal(KEY, retried.code)})
    with pytest.raises(FleetpatchError) as refused:
        activities.activate_new_instance(_request(systems_account, "proj/1", "run-2"))
    assert refused.value.type is ErrorType.ALREADY_ENROLLED and not refused.value.retryable
    assert "proj/1" in refused.value.reason
    assert [a["ActivationId"] for a in ssm.describe_activations()["ActivationList"]] == [retried.id]  # nothing new

    other = activities.activate_new_instance(_request(systems_account, "proj/2", "run-3"))
    assert other.id != retried.id

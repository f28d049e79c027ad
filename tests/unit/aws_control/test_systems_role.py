"""The least-privilege systems role, against the local AWS, which enforces IAM in vended accounts:
vending creates FleetpatchSystemsAccess through OrganizationAccountAccessRole, and configuration,
activations, agents, tags, patch commands and the patch-train bucket all run through that role."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from activities.aws import AwsActivities
from clouds.aws import systems_role
from clouds.aws.organizations import Organizations, account_email, account_name
from clouds.aws.patch_train import PatchTrainStore
from clouds.aws.sessions import AwsSessions
from clouds.aws.ssm_agents import SsmAgents
from clouds.aws.ssm_commands import RateLimiter, SsmCommands
from clouds.aws.ssm_config import SERVICE_ROLE, SsmConfigurator
from contracts.enrollment import AccountRef, CreateAccountSubmitted, account_tags
from contracts.errors import ErrorType, FleetpatchError
from contracts.patch_batches import CommandSpec
from contracts.patching import Operation
from contracts.providers import Provider
from tests.support.local_aws import LocalAws


def _vend(local_aws: LocalAws, sessions: AwsSessions) -> tuple[str, str]:
    """A member account of the local organization, through the product's own vending steps."""
    cloud_account = f"proj-{uuid.uuid4().hex[:8]}"
    email = account_email(Provider.GCP, cloud_account, prefix="fleetpatch", domain="systems.example")
    name = account_name("ACME", Provider.GCP, cloud_account, prefix="fleetpatch")
    request = Organizations(sessions).submit(name, email, account_tags("ACME", Provider.GCP, cloud_account))
    local_aws.advance(31)
    activities = AwsActivities(sessions._settings, sessions, sealing_key="k" * 44)
    status = activities.poll_create_account(CreateAccountSubmitted(request_id=request))
    assert status.state == "SUCCEEDED" and status.account_id
    return status.account_id, str(status.role_arn)


def test_vending_creates_the_role_and_everything_after_runs_through_it(local_aws: LocalAws, sessions: AwsSessions) -> None:
    account_id, role_arn = _vend(local_aws, sessions)
    assert role_arn == f"arn:aws:iam::{account_id}:role/FleetpatchSystemsAccess"
    admin_iam = local_aws.client("iam", local_aws.assume(account_id))
    inline = admin_iam.get_role_policy(RoleName="FleetpatchSystemsAccess", PolicyName=systems_role.POLICY_NAME)
    assert inline["PolicyDocument"] == systems_role.permissions_policy()

    account = AccountRef(account_id=account_id, role_arn=role_arn)
    assert SsmConfigurator(sessions).apply(account, version=1).service_role == SERVICE_ROLE
    agents = SsmAgents(sessions)
    activation = agents.create_activation(
        account, service_role=SERVICE_ROLE, default_instance_name="web-1", idempotency_key="enroll/least/1",
        tags={"Patch Group": "early"}, expiry=timedelta(hours=1),
    )
    agent_ssm = local_aws.client("ssm", local_aws.assume(account_id))
    session = local_aws.agent(agent_ssm, {"ActivationId": activation.id, "ActivationCode": activation.code})
    found = agents.find(account, activation_id=activation.id)
    assert found is not None and found.instance_id == session.instance_id
    agents.tag(account, found.instance_id, {"Patch Group": "late"})
    commands = SsmCommands(sessions, RateLimiter({"send": 100.0, "read": 100.0}))
    assert commands.targets(account, "late")
    spec = CommandSpec(index=0, key=f"patch-window/{account_id}/late/1", os="ubuntu",
                       instance_ids=[found.instance_id], operation=Operation.SCAN)
    command_id = commands.send(account, spec, delivery_timeout_seconds=600)
    assert commands.progress(account, [command_id])
    store = PatchTrainStore(sessions, "fleetpatch-patching-{account_id}-{region}")
    assert store.ensure_bucket(account).startswith("fleetpatch-patching-")
    agents.delete_activation(account, activation.id)


def test_the_local_aws_refuses_what_the_role_does_not_allow(local_aws: LocalAws, sessions: AwsSessions) -> None:
    account_id, role_arn = _vend(local_aws, sessions)
    account = AccountRef(account_id=account_id, role_arn=role_arn)
    admin_iam = local_aws.client("iam", local_aws.assume(account_id))
    narrowed = systems_role.permissions_policy()
    narrowed["Statement"][0]["Action"].remove("ssm:DescribeInstanceInformation")
    admin_iam.put_role_policy(RoleName="FleetpatchSystemsAccess", PolicyName=systems_role.POLICY_NAME,
                              PolicyDocument=json.dumps(narrowed))
    with pytest.raises(FleetpatchError) as refused:
        SsmAgents(sessions).find(account, instance_key="nothing/here")
    assert refused.value.type is ErrorType.AWS_ACCESS_DENIED
    # Ensuring again (as the next vending or adoption does) restores the shipped policy.
    systems_role.SystemsRole(sessions).ensure(account_id)
    assert SsmAgents(sessions).find(account, instance_key="nothing/here") is None
    # Anything outside the policy stays refused, e.g. reading IAM users.
    with pytest.raises(Exception, match="AccessDenied"):
        sessions.in_account("iam", role_arn).list_users()


def test_a_vended_account_without_the_role_cannot_be_entered(local_aws: LocalAws, sessions: AwsSessions) -> None:
    cloud_account = f"proj-{uuid.uuid4().hex[:8]}"
    org = Organizations(sessions)
    request = org.submit(account_name("ACME", Provider.GCP, cloud_account, prefix="fleetpatch"),
                         account_email(Provider.GCP, cloud_account, prefix="fleetpatch", domain="systems.example"), {})
    local_aws.advance(31)
    account_id = org.status(request).account_id
    assert account_id
    with pytest.raises(FleetpatchError) as refused:
        sessions.assume(sessions.role_arn_for(account_id))
    assert refused.value.type is ErrorType.AWS_ACCESS_DENIED


def test_a_role_that_does_not_trust_the_caller_cannot_be_assumed(local_aws: LocalAws, sessions: AwsSessions) -> None:
    account_id, _ = _vend(local_aws, sessions)
    admin_iam = local_aws.client("iam", local_aws.assume(account_id))
    stranger = systems_role.trust_policy("210987654321")
    admin_iam.create_role(RoleName="TrustsSomeoneElse", AssumeRolePolicyDocument=json.dumps(stranger))
    with pytest.raises(FleetpatchError) as refused:
        sessions.assume(f"arn:aws:iam::{account_id}:role/TrustsSomeoneElse")
    assert refused.value.type is ErrorType.AWS_ACCESS_DENIED

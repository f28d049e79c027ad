"""Organizations: asynchronous CreateAccount, its limits, and the vended account working."""

from __future__ import annotations

import secrets

import pytest

from localclouds.aws import MANAGEMENT_ACCOUNT
from tests.unit.localaws.conftest import CREATE_ACCOUNT_DELAY


@pytest.fixture
def orgs(local_aws):
    local_aws.advance(CREATE_ACCOUNT_DELAY + 1)  # settle requests other tests left behind
    return local_aws.client("organizations")


def _email() -> str:
    return f"systems-{secrets.token_hex(6)}@systems.fleetpatch.example"


def _status(orgs, request_id):
    return orgs.describe_create_account_status(
        CreateAccountRequestId=request_id)["CreateAccountStatus"]


def test_organization_exists_at_start(orgs):
    organization = orgs.describe_organization()["Organization"]
    assert organization["MasterAccountId"] == MANAGEMENT_ACCOUNT
    assert organization["FeatureSet"] == "ALL"


def test_create_account_is_asynchronous_and_tagged(local_aws, orgs):
    email = _email()
    started = orgs.create_account(Email=email, AccountName="fleetpatch-gcp-proj-1",
                                  Tags=[{"Key": "fleetpatch:cloud-account", "Value": "gcp/p1"}])
    status = started["CreateAccountStatus"]
    assert status["State"] == "IN_PROGRESS" and status["Id"].startswith("car-")
    assert "AccountId" not in status
    assert email not in [a["Email"] for a in orgs.list_accounts()["Accounts"]]
    in_progress = orgs.list_create_account_status(States=["IN_PROGRESS"])
    assert status["Id"] in [s["Id"] for s in in_progress["CreateAccountStatuses"]]

    local_aws.advance(CREATE_ACCOUNT_DELAY / 2)
    assert _status(orgs, status["Id"])["State"] == "IN_PROGRESS"
    local_aws.advance(CREATE_ACCOUNT_DELAY / 2 + 1)
    done = _status(orgs, status["Id"])
    assert done["State"] == "SUCCEEDED" and done["CompletedTimestamp"] >= done[
        "RequestedTimestamp"]
    account_id = done["AccountId"]
    accounts = {a["Id"]: a for a in orgs.list_accounts()["Accounts"]}
    assert accounts[account_id]["Email"] == email
    tags = orgs.list_tags_for_resource(ResourceId=account_id)["Tags"]
    assert tags == [{"Key": "fleetpatch:cloud-account", "Value": "gcp/p1"}]
    orgs.tag_resource(ResourceId=account_id, Tags=[{"Key": "customer", "Value": "acme"}])
    tags = {t["Key"]: t["Value"] for t in orgs.list_tags_for_resource(ResourceId=account_id)[
        "Tags"]}
    assert tags == {"fleetpatch:cloud-account": "gcp/p1", "customer": "acme"}

    # The vended account is reachable through its OrganizationAccountAccessRole.
    session = local_aws.assume(account_id)
    assert local_aws.client("sts", session).get_caller_identity()["Account"] == account_id
    ssm = local_aws.client("ssm", session)
    activation_id = ssm.create_activation(IamRole="SSMServiceRole")["ActivationId"]
    assert [a["ActivationId"] for a in ssm.describe_activations()["ActivationList"]] == [
        activation_id]
    management = local_aws.client("ssm").describe_activations()["ActivationList"]
    assert activation_id not in [a["ActivationId"] for a in management]
    iam = local_aws.client("iam", session)
    assert iam.get_role(RoleName="OrganizationAccountAccessRole")["Role"]["Arn"].startswith(
        f"arn:aws:iam::{account_id}:")


def test_at_most_five_in_progress(local_aws, orgs):
    started = [orgs.create_account(Email=_email(), AccountName=f"acct-{n}")[
        "CreateAccountStatus"]["Id"] for n in range(5)]
    with pytest.raises(orgs.exceptions.ConstraintViolationException) as refused:
        orgs.create_account(Email=_email(), AccountName="acct-6")
    assert refused.value.response["Reason"] == "ACCOUNT_CREATION_RATE_LIMIT_EXCEEDED"
    local_aws.advance(CREATE_ACCOUNT_DELAY + 1)
    assert {_status(orgs, r)["State"] for r in started} == {"SUCCEEDED"}
    sixth = orgs.create_account(Email=_email(), AccountName="acct-6")["CreateAccountStatus"]
    assert sixth["State"] == "IN_PROGRESS"


def test_duplicate_email_fails_like_the_real_service(local_aws, orgs):
    email = _email()
    first = orgs.create_account(Email=email, AccountName="first")["CreateAccountStatus"]
    local_aws.advance(CREATE_ACCOUNT_DELAY + 1)
    assert _status(orgs, first["Id"])["State"] == "SUCCEEDED"
    second = orgs.create_account(Email=email, AccountName="second")["CreateAccountStatus"]
    assert second["State"] == "IN_PROGRESS"
    local_aws.advance(CREATE_ACCOUNT_DELAY + 1)
    failed = _status(orgs, second["Id"])
    assert failed["State"] == "FAILED" and failed["FailureReason"] == "EMAIL_ALREADY_EXISTS"
    assert "AccountId" not in failed
    emails = [a["Email"] for a in orgs.list_accounts()["Accounts"]]
    assert emails.count(email) == 1
    failures = orgs.list_create_account_status(States=["FAILED"])["CreateAccountStatuses"]
    assert second["Id"] in [s["Id"] for s in failures]


def test_unknown_request_and_member_accounts(local_aws, orgs):
    with pytest.raises(orgs.exceptions.CreateAccountStatusNotFoundException):
        orgs.describe_create_account_status(CreateAccountRequestId="car-" + "0" * 32)
    _, outsider = local_aws.new_account()
    outsider_orgs = local_aws.client("organizations", outsider)
    with pytest.raises(outsider_orgs.exceptions.AWSOrganizationsNotInUseException):
        outsider_orgs.create_account(Email=_email(), AccountName="nope")

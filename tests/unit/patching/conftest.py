"""The real local AWS (a subprocess, spoken to over the wire) for the cloud-layer tests.

Started once for the folder, only when a test asks for it; every test works in a fresh account
reached through STS AssumeRole, like a vended systems account.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from clouds.aws.sessions import AwsSessions
from config.settings import AwsSettings
from contracts.enrollment import AccountRef
from localclouds.aws import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from tests.support.local_aws import NoRetrySessions, LocalAws, running_local_aws

TestSessions = NoRetrySessions


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    with running_local_aws(tmp_path_factory.mktemp("patching-aws"), create_account_delay=3, ping_timeout=600) as aws:
        yield aws


@pytest.fixture
def sessions(local_aws: LocalAws) -> AwsSessions:
    base = boto3.session.Session(aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
                                 region_name=REGION)
    return TestSessions(AwsSettings(endpoint_url=local_aws.endpoint, region=REGION), base=base)


@pytest.fixture
def systems_account(local_aws: LocalAws) -> AccountRef:
    account_id = "8" + "".join(secrets.choice("0123456789") for _ in range(11))
    return AccountRef(account_id=account_id, role_arn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
                      region=REGION)


@pytest.fixture
def account_ssm(local_aws: LocalAws, systems_account: AccountRef) -> Any:
    """A plain SSM client in the systems account (the test's view of the same state)."""
    return local_aws.client("ssm", local_aws.assume(systems_account.account_id))


@pytest.fixture
def no_faults(local_aws: LocalAws) -> Iterator[None]:
    yield
    local_aws.control("/__fleetpatch/faults", "DELETE")

"""The product's AWS control-plane code against the real local AWS (one server per session)."""

from __future__ import annotations


import pytest

from clouds.aws.sessions import AwsSessions
from config.settings import AwsSettings
from contracts.enrollment import AccountRef
from tests.support.local_aws import NoRetrySessions, LocalAws
from tests.unit.localaws.conftest import local_aws  # noqa: F401 - the shared server fixture

_Sessions = NoRetrySessions


@pytest.fixture
def sessions(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> AwsSessions:  # noqa: F811
    from localclouds.aws import ACCESS_KEY_ID, SECRET_ACCESS_KEY

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    return _Sessions(AwsSettings(endpoint_url=local_aws.endpoint))


@pytest.fixture
def systems_account(local_aws: LocalAws, sessions: AwsSessions) -> AccountRef:  # noqa: F811
    account_id, _ = local_aws.new_account()
    return AccountRef(account_id=account_id, role_arn=sessions.role_arn_for(account_id))

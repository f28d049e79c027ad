"""One local AWS server (a real subprocess) for the whole folder, driven only over the wire.

Tests isolate themselves by working in fresh accounts: STS AssumeRole into a new account id
yields credentials that moto (and therefore our handlers) map to that account.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.support.local_aws import LocalAws, running_local_aws

PING_TIMEOUT = 60
CREATE_ACCOUNT_DELAY = 30


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    state_dir = tmp_path_factory.mktemp("state")
    with running_local_aws(state_dir, create_account_delay=CREATE_ACCOUNT_DELAY, ping_timeout=PING_TIMEOUT) as aws:
        assert (state_dir / "aws").is_dir()
        yield aws


@pytest.fixture(autouse=True)
def _no_faults(local_aws: LocalAws) -> Iterator[None]:
    yield
    local_aws.control("/__fleetpatch/faults", "DELETE")


@pytest.fixture
def account(local_aws: LocalAws) -> tuple[str, boto3.Session]:
    return local_aws.new_account()


@pytest.fixture
def ssm(local_aws: LocalAws, account: tuple[str, boto3.Session]) -> Any:
    return local_aws.client("ssm", account[1])

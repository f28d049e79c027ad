"""ComplianceSync tests: a real local AWS (its own process: accounts are created with no delay)
and a real SQLite estate store, migrated with the product's migrations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from sqlalchemy.orm import Session, sessionmaker

from clouds.aws.sessions import AwsSessions
from config.settings import AwsSettings
from estate import db
from localclouds.aws import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from tests.support.local_aws import NoRetrySessions, LocalAws, running_local_aws

TestSessions = NoRetrySessions


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    with running_local_aws(tmp_path_factory.mktemp("compliance-aws"), create_account_delay=0, ping_timeout=600) as aws:
        yield aws


@pytest.fixture
def aws_settings(local_aws: LocalAws) -> AwsSettings:
    return AwsSettings(endpoint_url=local_aws.endpoint, region=REGION)


@pytest.fixture
def aws_sessions(aws_settings: AwsSettings) -> AwsSessions:
    base = boto3.session.Session(aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
                                 region_name=REGION)
    return TestSessions(aws_settings, base=base)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'estate.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    yield db.sessions(engine)
    engine.dispose()

"""boto3 sessions: the management account, and any account reached by assuming a role.

Assumed-role credentials are cached until shortly before they expire, per (role, external id).
The endpoint URL comes from settings, so local runs use the local AWS by configuration only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config

from clouds.aws.errors import aws_call
from config.settings import AwsSettings

_REFRESH_MARGIN = timedelta(minutes=5)


@dataclass
class _Cached:
    session: boto3.session.Session
    expires: datetime


class AwsSessions:
    def __init__(self, settings: AwsSettings, base: boto3.session.Session | None = None) -> None:
        self._settings = settings
        self._base = base or boto3.session.Session(region_name=settings.region)
        self._cache: dict[tuple[str, str | None], _Cached] = {}
        self._lock = threading.Lock()
        self._config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)

    @property
    def region(self) -> str:
        return self._settings.region

    def client(self, service: str, session: boto3.session.Session | None = None, region: str | None = None) -> Any:
        return (session or self._base).client(
            service,
            region_name=region or self._settings.region,
            endpoint_url=self._settings.endpoint_url,
            config=self._config,
        )

    def management(self, service: str) -> Any:
        return self.client(service)

    def role_arn_for(self, account_id: str) -> str:
        """The least-privilege role fleetpatch acts through in a systems account."""
        return f"arn:aws:iam::{account_id}:role/{self._settings.systems_role_name}"

    def bootstrap_role_arn_for(self, account_id: str) -> str:
        """The administrator role of a vended account; only clouds/aws/systems_role.py uses it."""
        return f"arn:aws:iam::{account_id}:role/{self._settings.access_role_name}"

    def assume(self, role_arn: str, external_id: str | None = None) -> boto3.session.Session:
        key = (role_arn, external_id)
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached.expires - _REFRESH_MARGIN > datetime.now(UTC):
                return cached.session
        kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": "fleetpatch"}
        if external_id:
            kwargs["ExternalId"] = external_id
        with aws_call("sts:AssumeRole"):
            creds = self.management("sts").assume_role(**kwargs)["Credentials"]
        session = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=self._settings.region,
        )
        expires = creds["Expiration"]
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        with self._lock:
            self._cache[key] = _Cached(session=session, expires=expires)
        return session

    def in_account(self, service: str, role_arn: str, external_id: str | None = None, region: str | None = None) -> Any:
        return self.client(service, self.assume(role_arn, external_id), region)

"""boto3 sessions: the management account, and any account reached by assuming a role.

Assumed-role credentials are cached until shortly before they expire, per (role, external id),
in :class:`AssumedRoles`, the one such cache (the ec2 worker and the local EC2 use it too).
The endpoint URL comes from settings, so local runs use the local AWS by configuration only.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from clouds.aws.errors import aws_call
from config.settings import AwsSettings

_REFRESH_MARGIN = timedelta(minutes=5)


@dataclass
class _Cached:
    session: boto3.session.Session
    expires: datetime


class AssumedRoles:
    """Sessions of assumed roles, cached per (role, external id) until five minutes before their
    credentials expire. Thread-safe. STS failures propagate as botocore raised them: callers map
    them to their own error types."""

    def __init__(
        self,
        *,
        session_name: str,
        region: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._session_name = session_name
        self._region = region
        self._clock = clock
        self._cache: dict[tuple[str, str | None], _Cached] = {}
        self._lock = threading.Lock()
        # Every session shares one loader: the service models (megabytes each) are read once per
        # process, not once per assumed role.
        self._loader = botocore.session.get_session().get_component("data_loader")

    def session(
        self, sts: Callable[[], Any], role_arn: str, external_id: str | None = None
    ) -> boto3.session.Session:
        """A session with the role's credentials; ``sts`` makes the STS client, called only
        when the cache has no fresh credentials for (role, external id)."""
        key = (role_arn, external_id)
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached.expires - _REFRESH_MARGIN > self._clock():
                return cached.session
        kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": self._session_name}
        if external_id:
            kwargs["ExternalId"] = external_id
        creds = sts().assume_role(**kwargs)["Credentials"]
        core = botocore.session.get_session()
        core.register_component("data_loader", self._loader)
        session = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=self._region,
            botocore_session=core,
        )
        expires = creds["Expiration"]
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        with self._lock:
            self._cache[key] = _Cached(session=session, expires=expires)
        return session


class AwsSessions:
    """Clients of the management account and of assumed roles. A client is made once per
    (session, service, region) and reused (botocore clients are thread-safe; making one costs
    more CPU than most calls, and sessions must not make clients from several threads at once):
    a session whose credentials were refreshed is a new session, and the old one's clients go
    with it."""

    def __init__(self, settings: AwsSettings, base: boto3.session.Session | None = None) -> None:
        self._settings = settings
        self._base = base or boto3.session.Session(region_name=settings.region)
        self._roles = AssumedRoles(session_name="fleetpatch", region=settings.region)
        self._config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
        self._clients: weakref.WeakKeyDictionary[boto3.session.Session, dict[tuple[str, str], Any]] = (
            weakref.WeakKeyDictionary())
        self._clients_lock = threading.Lock()

    @property
    def region(self) -> str:
        return self._settings.region

    def client(self, service: str, session: boto3.session.Session | None = None, region: str | None = None) -> Any:
        session = session or self._base
        key = (service, region or self._settings.region)
        with self._clients_lock:
            made = self._clients.setdefault(session, {})
            if key not in made:
                made[key] = session.client(
                    service, region_name=key[1], endpoint_url=self._settings.endpoint_url, config=self._config
                )
            return made[key]

    def management(self, service: str) -> Any:
        return self.client(service)

    def role_arn_for(self, account_id: str) -> str:
        """The least-privilege role fleetpatch acts through in a systems account."""
        return f"arn:aws:iam::{account_id}:role/{self._settings.systems_role_name}"

    def bootstrap_role_arn_for(self, account_id: str) -> str:
        """The administrator role of a vended account; only clouds/aws/systems_role.py uses it."""
        return f"arn:aws:iam::{account_id}:role/{self._settings.access_role_name}"

    def assume(self, role_arn: str, external_id: str | None = None) -> boto3.session.Session:
        with aws_call("sts:AssumeRole"):
            return self._roles.session(lambda: self.management("sts"), role_arn, external_id)

    def in_account(self, service: str, role_arn: str, external_id: str | None = None, region: str | None = None) -> Any:
        return self.client(service, self.assume(role_arn, external_id), region)

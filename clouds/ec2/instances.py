"""An EC2 instance as the EC2 API describes it (tags, state), and tagging it for patching.

:class:`Ec2Instances` takes an injected boto3 session factory (the worker's own credentials).
When a customer link names a cross-account role, it is assumed (STS ``AssumeRole``, credentials
cached until shortly before they expire) and the instance is read in that account. The endpoint
comes from settings (``FLEETPATCH_EC2__ENDPOINT_URL``, else ``FLEETPATCH_AWS__ENDPOINT_URL``,
else AWS's own), so locally the moto server is used by configuration only.

Every botocore failure is mapped in :func:`map_aws_error`, the one place that knows them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from clouds.aws.errors import translate
from clouds.aws.sessions import AssumedRoles
from config.settings import Settings
from contracts.errors import (
    ErrorType,
    FleetpatchError,
    IdentityRefused,
    InstanceRefused,
)
from contracts.models import VmMetadata
from contracts.providers import Provider

SessionFactory = Callable[[], boto3.session.Session]

ACCOUNT_ID = re.compile(r"^\d{12}$")
REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
INSTANCE_ID = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
ROLE_ARN = re.compile(r"^arn:aws(?:-cn|-us-gov)?:iam::(?P<account>\d{12}):role/[\w+=,.@/-]{1,512}$")
#: States in which an instance may enroll; anything else is InstanceNotRunning.
ENROLLABLE_STATES = frozenset({"pending", "running"})
NOT_FOUND_CODES = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})
#: Tag limits of EC2: keys 1-128 characters, values up to 256, no ``aws:`` prefix.
MAX_TAG_KEY, MAX_TAG_VALUE = 128, 256


class Ec2AccessDenied(FleetpatchError):
    """The ec2 worker may not assume the customer's role or call EC2 there. Not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(ErrorType.AWS_ACCESS_DENIED, reason)


class Ec2RequestRefused(FleetpatchError):
    """EC2 or STS refused a request for a reason that waiting will not fix."""

    def __init__(self, reason: str) -> None:
        super().__init__(ErrorType.CONFIGURATION_INVALID, reason)


def map_aws_error(exc: Exception, what: str) -> FleetpatchError:
    """The fleetpatch error for a botocore failure while working on ``what`` (the caller raises
    it ``from exc``): EC2's not-found codes here, the rest as for every AWS call."""
    if isinstance(exc, ClientError) and str(exc.response.get("Error", {}).get("Code", "")) in NOT_FOUND_CODES:
        return InstanceRefused(ErrorType.INSTANCE_NOT_FOUND, f"{what} does not exist")
    mapped = translate(exc, what)
    if mapped is exc or not isinstance(mapped, FleetpatchError):
        return Ec2RequestRefused(f"AWS refused {what}: {type(exc).__name__}: {exc}"[:400])
    if mapped.type is ErrorType.AWS_ACCESS_DENIED:
        return Ec2AccessDenied(mapped.reason)
    return mapped


def _check_ids(account_id: str, region: str, instance_id: str) -> None:
    for value, pattern, label in (
        (account_id, ACCOUNT_ID, "account id"),
        (region, REGION, "region"),
        (instance_id, INSTANCE_ID, "instance id"),
    ):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, f"{label} {value!r} is malformed")


class Ec2Instances:
    """Describes and tags EC2 instances, in the worker's account or through a customer role."""

    def __init__(
        self,
        *,
        session_factory: SessionFactory = boto3.session.Session,
        endpoint_url: str | None = None,
        role_session_name: str = "fleetpatch-ec2",
        config: Config | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._base = session_factory()
        self._endpoint = endpoint_url
        self._config = config or Config(
            retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=20
        )
        self._roles = AssumedRoles(session_name=role_session_name, clock=clock)

    @classmethod
    def from_settings(
        cls, settings: Settings, session_factory: SessionFactory = boto3.session.Session
    ) -> Ec2Instances:
        return cls(
            session_factory=session_factory,
            endpoint_url=settings.ec2.endpoint_url or settings.aws.endpoint_url,
            role_session_name=settings.ec2.role_session_name,
        )

    def _session(
        self, account_id: str, region: str, role_arn: str | None, external_id: str | None
    ) -> boto3.session.Session:
        if role_arn is None:
            return self._base
        match = ROLE_ARN.fullmatch(role_arn) if isinstance(role_arn, str) else None
        if match is None:
            raise Ec2RequestRefused(f"role {role_arn!r} is not an IAM role ARN")
        if match.group("account") != account_id:
            raise Ec2RequestRefused(f"role {role_arn} is not in account {account_id}")

        def sts() -> Any:
            return self._base.client(
                "sts", region_name=region, endpoint_url=self._endpoint, config=self._config
            )

        try:
            return self._roles.session(sts, role_arn, external_id)
        except (ClientError, BotoCoreError) as exc:
            raise map_aws_error(exc, f"assuming {role_arn}") from exc

    def _ec2(
        self, account_id: str, region: str, role_arn: str | None, external_id: str | None
    ) -> Any:
        session = self._session(account_id, region, role_arn, external_id)
        return session.client(
            "ec2", region_name=region, endpoint_url=self._endpoint, config=self._config
        )

    def describe(
        self,
        account_id: str,
        region: str,
        instance_id: str,
        role_arn: str | None = None,
        *,
        external_id: str | None = None,
    ) -> VmMetadata:
        """The instance, which must belong to ``account_id`` and be pending or running."""
        _check_ids(account_id, region, instance_id)
        what = f"instance {instance_id} in {account_id}/{region}"
        ec2 = self._ec2(account_id, region, role_arn, external_id)
        try:
            answer = ec2.describe_instances(InstanceIds=[instance_id])
        except (ClientError, BotoCoreError) as exc:
            raise map_aws_error(exc, what) from exc
        found = [
            (reservation, inst)
            for reservation in answer.get("Reservations", [])
            for inst in reservation.get("Instances", [])
            if inst.get("InstanceId") == instance_id
        ]
        if len(found) != 1:
            raise InstanceRefused(ErrorType.INSTANCE_NOT_FOUND, f"{what} does not exist")
        reservation, inst = found[0]
        if reservation.get("OwnerId") != account_id:
            raise IdentityRefused(
                ErrorType.IDENTITY_INSTANCE_MISMATCH,
                f"{instance_id} belongs to {reservation.get('OwnerId')!r}, not {account_id}",
            )
        state = str((inst.get("State") or {}).get("Name", "unknown"))
        if state not in ENROLLABLE_STATES:
            raise InstanceRefused(ErrorType.INSTANCE_NOT_RUNNING, f"{what} is {state}")
        tags = {str(t["Key"]): str(t.get("Value", "")) for t in inst.get("Tags") or []}
        return VmMetadata(
            provider=Provider.AWS,
            cloud_account=account_id,
            instance_id=instance_id,
            name=tags.get("Name") or instance_id,
            labels=tags,
            state=state,
            region=region,
        )

    def list_instances(
        self, account_id: str, region: str, role_arn: str | None = None, *, external_id: str | None = None
    ) -> list[VmMetadata]:
        """Every instance of the account in ``region``, whatever its state (reconcile)."""
        ec2 = self._ec2(account_id, region, role_arn, external_id)
        vms: list[VmMetadata] = []
        try:
            for page in ec2.get_paginator("describe_instances").paginate():
                for reservation in page.get("Reservations", []):
                    for inst in reservation.get("Instances", []):
                        tags = {str(t["Key"]): str(t.get("Value", "")) for t in inst.get("Tags") or []}
                        vms.append(VmMetadata(
                            provider=Provider.AWS, cloud_account=account_id, instance_id=inst["InstanceId"],
                            name=tags.get("Name") or inst["InstanceId"], labels=tags,
                            state=str((inst.get("State") or {}).get("Name", "unknown")), region=region,
                        ))
        except (ClientError, BotoCoreError) as exc:
            raise map_aws_error(exc, f"instances of {account_id}/{region}") from exc
        return vms

    def tag_instance(
        self,
        account_id: str,
        region: str,
        instance_id: str,
        role_arn: str | None,
        tags: Mapping[str, str],
        *,
        external_id: str | None = None,
    ) -> None:
        """Add or overwrite ``tags`` on the instance (e.g. ``Patch Group``); others are kept."""
        _check_ids(account_id, region, instance_id)
        for key, value in tags.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise Ec2RequestRefused("tag keys and values must be strings")
            if (
                not 1 <= len(key) <= MAX_TAG_KEY
                or len(value) > MAX_TAG_VALUE
                or key.lower().startswith("aws:")
            ):
                raise Ec2RequestRefused(f"tag {key[:40]!r} breaks EC2's tag rules")
        if not tags:
            return
        what = f"instance {instance_id} in {account_id}/{region}"
        ec2 = self._ec2(account_id, region, role_arn, external_id)
        try:
            ec2.create_tags(
                Resources=[instance_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )
        except (ClientError, BotoCoreError) as exc:
            raise map_aws_error(exc, f"tagging {what}") from exc

    def untag_instance(
        self,
        account_id: str,
        region: str,
        instance_id: str,
        role_arn: str | None,
        keys: list[str],
        *,
        external_id: str | None = None,
    ) -> None:
        """Remove the tags named ``keys`` (absent ones are fine)."""
        _check_ids(account_id, region, instance_id)
        if not keys:
            return
        what = f"instance {instance_id} in {account_id}/{region}"
        ec2 = self._ec2(account_id, region, role_arn, external_id)
        try:
            ec2.delete_tags(Resources=[instance_id], Tags=[{"Key": k} for k in keys])
        except (ClientError, BotoCoreError) as exc:
            raise map_aws_error(exc, f"untagging {what}") from exc

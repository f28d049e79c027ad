"""Instances as the local AWS (a moto server) describes them, and the identity document.

moto picks the account from the caller's access key: keys it issued through STS ``AssumeRole``
belong to the role's account, any other key to the default account 123456789012. So this
module assumes ``arn:aws:iam::{account}:role/{role}`` (moto needs no such role to exist) and
reads the instance with those credentials, cached (``clouds.aws.sessions.AssumedRoles``) until
near expiry.

The document is pretty-printed exactly as EC2 prints it (two-space indent, ``"key" : value``,
no final newline) with the field order of current documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from clouds.aws.sessions import AssumedRoles
from localclouds.aws.faults import INTERNAL_AGENT

DOCUMENT_VERSION = "2017-09-30"


class MotoInstances:
    """Reads instances from the local AWS endpoint in any account."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        role_name: str = "OrganizationAccountAccessRole",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._endpoint = endpoint_url
        self._role_name = role_name
        base = boto3.session.Session()
        if base.get_credentials() is None:  # moto accepts any key; use a fixed local one
            base = boto3.session.Session(
                aws_access_key_id="AKIAFLEETPATCHLOCAL0", aws_secret_access_key="local-ec2-imds"
            )
        self._base = base
        # The IMDS is not the EC2 API: faults injected into the local AWS for the product's
        # calls never reach these reads (INTERNAL_AGENT), as a real IMDS is not throttled.
        self._config = Config(
            retries={"mode": "standard", "max_attempts": 4},
            connect_timeout=5,
            read_timeout=20,
            user_agent_extra=INTERNAL_AGENT,
        )
        self._roles = AssumedRoles(session_name="fleetpatch-local-imds", clock=clock)

    def _session(self, account: str) -> boto3.session.Session:
        def sts() -> Any:
            return self._base.client(
                "sts", region_name="us-east-1", endpoint_url=self._endpoint, config=self._config
            )

        return self._roles.session(sts, f"arn:aws:iam::{account}:role/{self._role_name}")

    def describe(self, account: str, region: str, instance_id: str) -> dict[str, Any] | None:
        """The instance (with ``OwnerId`` added), or None when moto has no such instance there."""
        ec2 = self._session(account).client(
            "ec2", region_name=region, endpoint_url=self._endpoint, config=self._config
        )
        try:
            answer = ec2.describe_instances(InstanceIds=[instance_id])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "").startswith("InvalidInstanceID"):
                return None
            raise
        for reservation in answer.get("Reservations", []):
            for inst in reservation.get("Instances", []):
                if inst.get("InstanceId") == instance_id:
                    return {**inst, "OwnerId": reservation.get("OwnerId", account)}
        return None


def identity_document(inst: dict[str, Any], region: str) -> dict[str, Any]:
    """The instance identity document's fields, in the order EC2 writes them."""
    codes = [
        c["ProductCodeId"]
        for c in inst.get("ProductCodes") or []
        if c.get("ProductCodeType") == "marketplace"
    ]
    launch = inst["LaunchTime"]
    launch = launch if launch.tzinfo else launch.replace(tzinfo=UTC)
    return {
        "accountId": inst["OwnerId"],
        "architecture": inst.get("Architecture", "x86_64"),
        "availabilityZone": (inst.get("Placement") or {}).get("AvailabilityZone", f"{region}a"),
        "billingProducts": None,
        "devpayProductCodes": None,
        "marketplaceProductCodes": codes or None,
        "imageId": inst.get("ImageId"),
        "instanceId": inst["InstanceId"],
        "instanceType": inst.get("InstanceType"),
        "kernelId": inst.get("KernelId"),
        "pendingTime": launch.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "privateIp": inst.get("PrivateIpAddress"),
        "ramdiskId": inst.get("RamdiskId"),
        "region": region,
        "version": DOCUMENT_VERSION,
    }


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[ " + ", ".join(_value(v) for v in value) + " ]"
    return json.dumps(str(value), ensure_ascii=False)


def render(document: dict[str, Any]) -> bytes:
    """EC2's pretty-printing: ``{\\n  "key" : value,\\n ...\\n}`` without a trailing newline."""
    lines = [f'  "{key}" : {_value(value)}' for key, value in document.items()]
    return ("{\n" + ",\n".join(lines) + "\n}").encode()

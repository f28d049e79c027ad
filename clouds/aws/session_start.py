"""``fleetpatch session start``: find a managed instance's systems account, assume the operator
role there, and give the AWS CLI what ``aws ssm start-session`` needs.

The credentials travel only in the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``), never on a command line, where other users of the machine could read them.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from clouds.aws.errors import aws_call
from clouds.aws.sessions import AwsSessions
from config.settings import AwsSettings


@dataclass
class SessionPlan:
    """Everything needed to start a session, for running it or for printing it."""

    instance_id: str
    account_id: str
    region: str
    environment: dict[str, str] = field(repr=False)  # holds temporary credentials: never log it

    def command(self) -> list[str]:
        return ["aws", "ssm", "start-session", "--target", self.instance_id, "--region", self.region]

    def printable(self) -> str:
        """Shell lines: the environment (credentials included) exported, then the command."""
        exports = [f"export {name}={shlex.quote(value)}" for name, value in sorted(self.environment.items())]
        return "\n".join([*exports, shlex.join(self.command())])


def operator_role_arn(settings: AwsSettings, account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{settings.operator_role_name}"


def find_account(sessions: AwsSessions, settings: AwsSettings, instance_id: str, accounts: Iterable[str], region: str) -> str | None:
    """The systems account (among ``accounts``) whose SSM knows ``instance_id``."""
    for account_id in dict.fromkeys(accounts):
        ssm = sessions.in_account("ssm", operator_role_arn(settings, account_id), region=region)
        with aws_call("ssm:DescribeInstanceInformation"):
            found = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])
        if found.get("InstanceInformationList"):
            return account_id
    return None


def plan_session(sessions: AwsSessions, settings: AwsSettings, instance_id: str, account_id: str, region: str) -> SessionPlan:
    """Assume the operator role in the account and build the session's environment."""
    with aws_call("sts:AssumeRole"):
        creds: dict[str, Any] = sessions.management("sts").assume_role(
            RoleArn=operator_role_arn(settings, account_id), RoleSessionName=f"fleetpatch-session-{instance_id}"[:64]
        )["Credentials"]
    environment = {
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }
    if settings.endpoint_url:  # AWS's own endpoints unless configured (the local AWS, a VPC endpoint)
        environment["AWS_ENDPOINT_URL_SSM"] = settings.endpoint_url
    return SessionPlan(instance_id=instance_id, account_id=account_id, region=region, environment=environment)

"""Vending systems accounts with AWS Organizations.

CreateAccount is neither idempotent nor synchronous, so vending is split into steps a workflow
drives: look for an existing account (deterministic email, then tags), submit, poll the request,
tag. A duplicate email fails the request with EMAIL_ALREADY_EXISTS; the caller then adopts the
account that holds that email.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from botocore.exceptions import ClientError

from clouds.aws.errors import aws_call, error_code
from clouds.aws.sessions import AwsSessions
from contracts.enrollment import TAG_CLOUD_ACCOUNT, TAG_MANAGED_BY, TAG_PROVIDER, CreateAccountStatus
from contracts.errors import ErrorType, TransientCloudError
from contracts.providers import Provider

_NAME_SAFE = re.compile(r"[^A-Za-z0-9 ._-]+")
#: Organizations refuses a 6th concurrent CreateAccount; the caller retries later.
_BUSY_REASONS = ("ACCOUNT_CREATION_RATE_LIMIT_EXCEEDED", "TOO_MANY_REQUESTS", "CONCURRENT_ACCOUNT_MODIFICATION")


def account_email(provider: Provider, cloud_account: str, *, prefix: str, domain: str) -> str:
    digest = hashlib.sha256(f"{Provider(provider).value}/{cloud_account}".encode()).hexdigest()[:16]
    email = f"{prefix}+{Provider(provider).value}-{digest}@{domain}"
    if len(email) > 64:
        raise ValueError(f"account email {email!r} is over 64 characters: use a shorter domain or prefix")
    return email


def account_name(customer: str, provider: Provider, cloud_account: str, *, prefix: str) -> str:
    name = _NAME_SAFE.sub("-", f"{prefix}-{customer}-{Provider(provider).value}-{cloud_account}")
    return name[:50]


class Organizations:
    def __init__(self, sessions: AwsSessions) -> None:
        self._sessions = sessions

    def _org(self) -> Any:
        return self._sessions.management("organizations")

    def _accounts(self) -> list[dict[str, Any]]:
        accounts: list[dict[str, Any]] = []
        with aws_call("organizations:ListAccounts"):
            for page in self._org().get_paginator("list_accounts").paginate():
                accounts += page["Accounts"]
        return accounts

    def tags_of(self, account_id: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        with aws_call("organizations:ListTagsForResource"):
            for page in self._org().get_paginator("list_tags_for_resource").paginate(ResourceId=account_id):
                tags.update({t["Key"]: t["Value"] for t in page["Tags"]})
        return tags

    def find(self, email: str, provider: Provider, cloud_account: str) -> str | None:
        """The active account vended for this cloud account: by its email, else by its tags."""
        accounts = [a for a in self._accounts() if a.get("Status", "ACTIVE") == "ACTIVE"]
        for account in accounts:
            if account["Email"].lower() == email.lower():
                return account["Id"]
        wanted = {TAG_PROVIDER: Provider(provider).value, TAG_CLOUD_ACCOUNT: cloud_account}
        for account in accounts:
            tags = self.tags_of(account["Id"])
            if all(tags.get(k) == v for k, v in wanted.items()):
                return account["Id"]
        return None

    def systems_accounts(self) -> list[tuple[str, dict[str, str]]]:
        """Every active account fleetpatch vended (tagged managed-by fleetpatch), with its tags."""
        found = []
        for account in self._accounts():
            if account.get("Status", "ACTIVE") != "ACTIVE":
                continue
            tags = self.tags_of(account["Id"])
            if tags.get(TAG_MANAGED_BY) == "fleetpatch" and tags.get(TAG_PROVIDER):
                found.append((account["Id"], tags))
        return found

    def submit(self, name: str, email: str, tags: dict[str, str]) -> str:
        try:
            with aws_call("organizations:CreateAccount"):
                response = self._org().create_account(
                    AccountName=name,
                    Email=email,
                    Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
                )
        except ClientError as err:
            message = str(err.response.get("Error", {}).get("Message", ""))
            reason = str(err.response.get("Reason") or err.response.get("Error", {}).get("Reason", ""))
            if error_code(err) in ("ConstraintViolationException", "TooManyRequestsException") and any(
                r in reason.upper() or r in message.upper() for r in _BUSY_REASONS
            ):
                raise TransientCloudError(
                    ErrorType.AWS_THROTTLED, f"Organizations is busy creating accounts: {message}"
                ) from err
            raise
        return response["CreateAccountStatus"]["Id"]

    def status(self, request_id: str) -> CreateAccountStatus:
        with aws_call("organizations:DescribeCreateAccountStatus"):
            status = self._org().describe_create_account_status(CreateAccountRequestId=request_id)[
                "CreateAccountStatus"
            ]
        return CreateAccountStatus(
            state=status["State"],
            account_id=status.get("AccountId"),
            failure_reason=status.get("FailureReason"),
        )

    def tag(self, account_id: str, tags: dict[str, str]) -> None:
        with aws_call("organizations:TagResource"):
            self._org().tag_resource(
                ResourceId=account_id, Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())]
            )

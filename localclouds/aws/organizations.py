"""Organizations CreateAccount made asynchronous and limited, like the real service.

CreateAccount answers IN_PROGRESS; after ``delay`` the request is decided: SUCCEEDED (the account
is then created through moto's own backend, so ListAccounts, tags, the
OrganizationAccountAccessRole and STS AssumeRole all work for it) or FAILED with
EMAIL_ALREADY_EXISTS. At most ``max_in_progress`` requests may be in progress; one more is refused
with ConstraintViolationException / ACCOUNT_CREATION_RATE_LIMIT_EXCEEDED. Every other
Organizations action stays with moto, after pending requests are settled.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from localclouds.aws.context import RequestContext
from localclouds.aws.protocol import AwsError, paginate, require, tags_to_dict

MAX_IN_PROGRESS = 5


@dataclass
class CreateRequest:
    request_id: str
    management_account: str
    account_name: str
    email: str
    role_name: str
    tags: dict[str, str]
    requested: datetime
    state: str = "IN_PROGRESS"
    completed: datetime | None = None
    account_id: str | None = None
    failure: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "Id": self.request_id,
            "AccountName": self.account_name,
            "State": self.state,
            "RequestedTimestamp": self.requested,
        }
        if self.completed:
            status["CompletedTimestamp"] = self.completed
        if self.account_id:
            status["AccountId"] = self.account_id
        if self.failure:
            status["FailureReason"] = self.failure
        return status


def _backend(account_id: str) -> Any:
    from moto.organizations.models import organizations_backends

    return organizations_backends[account_id]["aws"]


def create_organization(management_account: str, region: str) -> None:
    """Called once at start so the management account can vend accounts."""
    backend = _backend(management_account)
    if backend.org is None:
        backend.create_organization(region=region, FeatureSet="ALL")


class OrganizationsService:
    RUNTIME_FIELDS = ("delay", "max_in_progress", "lock")  # not saved (persistence.py)

    def __init__(self, delay: timedelta, max_in_progress: int = MAX_IN_PROGRESS) -> None:
        self.delay = delay
        self.max_in_progress = max_in_progress
        self.lock = threading.RLock()
        self.requests: dict[str, CreateRequest] = {}

    def handlers(self) -> dict[str, Any]:
        return {
            "CreateAccount": self.create_account,
            "DescribeCreateAccountStatus": self.describe_create_account_status,
            "ListCreateAccountStatus": self.list_create_account_status,
        }

    def settle(self, now: datetime) -> None:
        """Decide every request whose delay has passed, oldest first (call with lock held)."""
        due = sorted((r for r in self.requests.values()
                      if r.state == "IN_PROGRESS" and now >= r.requested + self.delay),
                     key=lambda r: r.requested)
        for request in due:
            backend = _backend(request.management_account)
            taken = {a.email.lower() for a in backend.accounts}
            if backend.org is not None:
                taken.add(backend.org.master_account_email.lower())
            request.completed = now
            if request.email.lower() in taken:
                request.state, request.failure = "FAILED", "EMAIL_ALREADY_EXISTS"
                continue
            backend.create_account(AccountName=request.account_name, Email=request.email,
                                   RoleName=request.role_name,
                                   Tags=[{"Key": k, "Value": v} for k, v in request.tags.items()])
            account = backend.accounts[-1]
            account.create_account_status_id = request.request_id
            account.create_time = now.astimezone(UTC).replace(tzinfo=None)  # moto: naive UTC
            request.state, request.account_id = "SUCCEEDED", account.id

    def _management(self, ctx: RequestContext) -> Any:
        backend = _backend(ctx.account_id)
        if backend.org is None:
            raise AwsError("AWSOrganizationsNotInUseException", "Your account is not a member "
                           "of an organization.")
        return backend

    def create_account(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._management(ctx)
        email = require(params, "Email")
        name = require(params, "AccountName")
        if "@" not in email or len(email) > 64 or not 1 <= len(name) <= 50:
            raise AwsError("InvalidInputException", "You provided a value that does not match "
                           "the required pattern.", extra={"Reason": "INVALID_PATTERN"})
        in_progress = sum(1 for r in self.requests.values()
                          if r.state == "IN_PROGRESS" and r.management_account == ctx.account_id)
        if in_progress >= self.max_in_progress:
            raise AwsError("ConstraintViolationException", "You have exceeded the allowed "
                           "number of accounts that can be in progress at a time.",
                           extra={"Reason": "ACCOUNT_CREATION_RATE_LIMIT_EXCEEDED"})
        request = CreateRequest(
            request_id="car-" + secrets.token_hex(16),
            management_account=ctx.account_id,
            account_name=name,
            email=email,
            role_name=params.get("RoleName") or "OrganizationAccountAccessRole",
            tags=tags_to_dict(params.get("Tags")),
            requested=ctx.now,
        )
        self.requests[request.request_id] = request
        self.settle(ctx.now)
        return {"CreateAccountStatus": request.view()}

    def describe_create_account_status(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        self._management(ctx)
        request = self.requests.get(require(params, "CreateAccountRequestId"))
        if request is None or request.management_account != ctx.account_id:
            raise AwsError("CreateAccountStatusNotFoundException", "We can't find a create "
                           "account request with the CreateAccountRequestId that you specified.")
        return {"CreateAccountStatus": request.view()}

    def list_create_account_status(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        self._management(ctx)
        states = params.get("States") or ["IN_PROGRESS", "SUCCEEDED", "FAILED"]
        found = sorted((r for r in self.requests.values()
                        if r.management_account == ctx.account_id and r.state in states),
                       key=lambda r: r.requested)
        page, token = paginate(found, params, default=20, maximum=20)
        result: dict[str, Any] = {"CreateAccountStatuses": [r.view() for r in page]}
        if token:
            result["NextToken"] = token
        return result

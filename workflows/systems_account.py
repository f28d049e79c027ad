"""SystemsAccount: the AWS account that serves one customer cloud account, vended once.

Organizations CreateAccount is neither idempotent nor synchronous: look up (deterministic email,
then tags), submit, poll, adopt on EMAIL_ALREADY_EXISTS, tag. EC2 cloud accounts are not vended:
the customer's own account is used through the linked cross-account role.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts.enrollment import (
        AccountLookup,
        AccountRef,
        CreateAccountRequest,
        CreateAccountStatus,
        CreateAccountSubmitted,
        FoundAccount,
        SystemsAccount,
        SystemsAccountInput,
        TagAccountInput,
        account_tags,
    )
    from contracts.errors import ErrorType
    from contracts.models import ActivityName
    from contracts.names import WorkflowName
    from contracts.patching import EnsureWindowsInput
    from contracts.providers import WorkerRole
    from workflows import options
    from workflows.calls import Calls
    from workflows.patch_schedules import ensure_windows
    from workflows.shared import upsert


def _vending_failed(message: str) -> ApplicationError:
    return ApplicationError(message, type=ErrorType.ACCOUNT_VENDING_FAILED, non_retryable=True)


@workflow.defn(name=WorkflowName.SYSTEMS_ACCOUNT)
class SystemsAccountWorkflow:
    @workflow.run
    async def run(self, inp: SystemsAccountInput) -> SystemsAccount:
        upsert(
            sa.PROVIDER.value_set(inp.provider.value),
            sa.CLOUD_ACCOUNT.value_set(inp.cloud_account),
            sa.CUSTOMER.value_set(inp.customer),
        )
        if inp.role_arn:
            account = self._customer_owned(inp)
        else:
            account = await self._vend(inp)
        upsert(sa.SYSTEMS_ACCOUNT.value_set(account.account_id))
        if workflow.patched("ensure-patch-windows"):
            await self._ensure_windows(inp, account)
        return account

    @staticmethod
    def _customer_owned(inp: SystemsAccountInput) -> SystemsAccount:
        parts = (inp.role_arn or "").split(":")
        if len(parts) < 6 or parts[0] != "arn" or parts[2] != "iam" or not parts[4].isdigit():
            raise ApplicationError(
                f"link for {inp.cloud_account} has no valid role ARN: {inp.role_arn!r}",
                type=ErrorType.CONFIGURATION_INVALID,
                non_retryable=True,
            )
        return SystemsAccount(
            account_id=parts[4],
            provider=inp.provider,
            cloud_account=inp.cloud_account,
            customer=inp.customer,
            role_arn=inp.role_arn or "",
            external_id=inp.external_id,
            adopted=True,
        )

    async def _vend(self, inp: SystemsAccountInput) -> SystemsAccount:
        """Find the account (email, then tags), else create it; adopt on EMAIL_ALREADY_EXISTS; tag."""
        calls = Calls(inp.queue_prefix)
        lookup = AccountLookup(provider=inp.provider, cloud_account=inp.cloud_account, customer=inp.customer)
        found = await calls.activity(WorkerRole.AWS, ActivityName.FIND_SYSTEMS_ACCOUNT, lookup, FoundAccount, options.AWS_CONTROL)
        tags = account_tags(inp.customer, inp.provider, inp.cloud_account)
        adopted = found.account_id is not None
        account_id, role_arn = found.account_id, found.role_arn
        if not adopted:
            status = await self._create(calls, inp, found, tags)
            if status.state == "FAILED" and status.failure_reason == "EMAIL_ALREADY_EXISTS":
                # Another request (or an earlier attempt of ours) already made it: adopt that one.
                found = await calls.activity(
                    WorkerRole.AWS, ActivityName.FIND_SYSTEMS_ACCOUNT, lookup, FoundAccount, options.AWS_CONTROL
                )
                adopted = True
                account_id, role_arn = found.account_id, found.role_arn
            elif status.state != "SUCCEEDED":
                raise _vending_failed(
                    f"Organizations refused the account for {inp.provider.value}/{inp.cloud_account}: "
                    f"{status.failure_reason or status.state}"
                )
            else:
                account_id, role_arn = status.account_id, status.role_arn
        if not account_id or not role_arn:
            raise _vending_failed(f"no account found for {found.email} after EMAIL_ALREADY_EXISTS")
        tag = TagAccountInput(account_id=account_id, tags=tags)
        await calls.activity(WorkerRole.AWS, ActivityName.TAG_SYSTEMS_ACCOUNT, tag, None, options.AWS_CONTROL)
        return SystemsAccount(
            account_id=account_id,
            provider=inp.provider,
            cloud_account=inp.cloud_account,
            customer=inp.customer,
            role_arn=role_arn,
            adopted=adopted,
        )

    @staticmethod
    async def _create(calls: Calls, inp: SystemsAccountInput, found: FoundAccount, tags: dict[str, str]) -> CreateAccountStatus:
        """Submit CreateAccount and poll it (not idempotent, not synchronous) until it settles."""
        submitted = await calls.activity(
            WorkerRole.AWS, ActivityName.SUBMIT_CREATE_ACCOUNT,
            CreateAccountRequest(name=found.name, email=found.email, tags=tags),
            CreateAccountSubmitted, options.AWS_CONTROL,
        )
        workflow.logger.info("account requested", extra={"request_id": submitted.request_id})
        return await calls.activity(
            WorkerRole.AWS, ActivityName.POLL_CREATE_ACCOUNT, submitted, CreateAccountStatus,
            options.poll_flat(options.CREATE_ACCOUNT_TIMEOUT),
        )

    @staticmethod
    async def _ensure_windows(inp: SystemsAccountInput, account: SystemsAccount) -> None:
        """The account's patch-window schedules (best effort: see workflows.patch_schedules)."""
        ref = AccountRef(account_id=account.account_id, role_arn=account.role_arn,
                         external_id=account.external_id, region=account.region)
        await ensure_windows(
            EnsureWindowsInput(
                account=ref, customer=inp.customer, provider=inp.provider.value, cloud_account=inp.cloud_account,
                time_zone=inp.time_zone, windows=inp.windows, queue_prefix=inp.queue_prefix,
            )
        )

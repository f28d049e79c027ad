"""SystemsAccount: the AWS account that serves one customer cloud account, vended once.

Organizations CreateAccount is neither idempotent nor synchronous: look up (deterministic email,
then tags), submit, poll, adopt on EMAIL_ALREADY_EXISTS, tag. EC2 cloud accounts are not vended:
the customer's own account is used through the linked cross-account role.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts import taskqueues
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
    from contracts.providers import WorkerRole
    from contracts.patching import EnsureWindowsInput
    from workflows import options
    from workflows.patch_schedules import ensure_windows
    from workflows.shared import upsert

#: How long account creation may take before the vending fails (real AWS: usually minutes).
CREATE_ACCOUNT_TIMEOUT = timedelta(hours=1)


@workflow.defn(name="SystemsAccount")
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
            # The account's patch-window schedules (best effort: see workflows.patch_schedules).
            await ensure_windows(
                EnsureWindowsInput(
                    account=AccountRef(account_id=account.account_id, role_arn=account.role_arn,
                                       external_id=account.external_id, region=account.region),
                    customer=inp.customer, provider=inp.provider.value, cloud_account=inp.cloud_account,
                    time_zone=inp.time_zone, windows=inp.windows, queue_prefix=inp.queue_prefix,
                )
            )
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

    async def _aws(self, name: str, arg: object, result_type: type | None, inp: SystemsAccountInput, preset=options.AWS_CONTROL, **extra):
        kwargs = preset.kwargs()
        kwargs.update(extra)
        return await workflow.execute_activity(
            name, arg, task_queue=taskqueues.for_role(WorkerRole.AWS, inp.queue_prefix), result_type=result_type, **kwargs
        )

    async def _vend(self, inp: SystemsAccountInput) -> SystemsAccount:
        lookup = AccountLookup(provider=inp.provider, cloud_account=inp.cloud_account, customer=inp.customer)
        found: FoundAccount = await self._aws(ActivityName.FIND_SYSTEMS_ACCOUNT, lookup, FoundAccount, inp)
        tags = account_tags(inp.customer, inp.provider, inp.cloud_account)
        adopted = found.account_id is not None
        account_id, role_arn = found.account_id, found.role_arn
        if not adopted:
            submitted: CreateAccountSubmitted = await self._aws(
                ActivityName.SUBMIT_CREATE_ACCOUNT,
                CreateAccountRequest(name=found.name, email=found.email, tags=tags),
                CreateAccountSubmitted,
                inp,
            )
            workflow.logger.info("account requested", extra={"request_id": submitted.request_id})
            status: CreateAccountStatus = await self._aws(
                ActivityName.POLL_CREATE_ACCOUNT,
                submitted,
                CreateAccountStatus,
                inp,
                preset=options.POLL_FLAT,
                schedule_to_close_timeout=CREATE_ACCOUNT_TIMEOUT,
            )
            if status.state == "FAILED" and status.failure_reason == "EMAIL_ALREADY_EXISTS":
                # Another request (or an earlier attempt of ours) already made it: adopt that one.
                found = await self._aws(ActivityName.FIND_SYSTEMS_ACCOUNT, lookup, FoundAccount, inp)
                adopted = True
                account_id, role_arn = found.account_id, found.role_arn
            elif status.state != "SUCCEEDED":
                raise ApplicationError(
                    f"Organizations refused the account for {inp.provider.value}/{inp.cloud_account}: "
                    f"{status.failure_reason or status.state}",
                    type=ErrorType.ACCOUNT_VENDING_FAILED,
                    non_retryable=True,
                )
            else:
                account_id, role_arn = status.account_id, status.role_arn
        if not account_id or not role_arn:
            raise ApplicationError(
                f"no account found for {found.email} after EMAIL_ALREADY_EXISTS",
                type=ErrorType.ACCOUNT_VENDING_FAILED,
                non_retryable=True,
            )
        await self._aws(ActivityName.TAG_SYSTEMS_ACCOUNT, TagAccountInput(account_id=account_id, tags=tags), None, inp)
        return SystemsAccount(
            account_id=account_id,
            provider=inp.provider,
            cloud_account=inp.cloud_account,
            customer=inp.customer,
            role_arn=role_arn,
            adopted=adopted,
        )

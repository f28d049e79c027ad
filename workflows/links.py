"""LinkAdmin: operators' changes to tenant links, run as workflows so each one is on record."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts.enrollment import LinkCommand, LinkCommandResult, ListLinksResult
    from contracts.errors import ErrorType
    from contracts.models import ActivityName, RemoteAccessInput, RemoteAccessResult
    from contracts.names import WorkflowName
    from contracts.providers import WorkerRole
    from workflows.calls import NO_INPUT, Calls
    from workflows.options import AWS_CONTROL
    from workflows.shared import upsert


@workflow.defn(name=WorkflowName.LINK_ADMIN)
class LinkAdminWorkflow:
    @workflow.run
    async def run(self, command: LinkCommand) -> LinkCommandResult:
        calls = Calls(command.queue_prefix)
        if command.action == "list":
            listed = await calls.activity(WorkerRole.AWS, ActivityName.LIST_LINKS, NO_INPUT, ListLinksResult, AWS_CONTROL)
            return LinkCommandResult(links=listed.links)
        if command.action == "put" and command.link is not None:
            link = command.link
            upsert(
                sa.PROVIDER.value_set(link.provider.value),
                sa.CLOUD_ACCOUNT.value_set(link.cloud_account),
                sa.CUSTOMER.value_set(link.customer),
            )
            await calls.activity(WorkerRole.AWS, ActivityName.PUT_LINK, link, None, AWS_CONTROL)
            if link.remote_access and command.account is not None:
                remote = RemoteAccessInput(account=command.account)
                await calls.activity(WorkerRole.AWS, ActivityName.ENABLE_REMOTE_ACCESS, remote, RemoteAccessResult, AWS_CONTROL)
            return LinkCommandResult(links=[link])
        if command.action == "delete" and command.key is not None:
            upsert(sa.PROVIDER.value_set(command.key.provider.value), sa.CLOUD_ACCOUNT.value_set(command.key.cloud_account))
            removed = await calls.activity(WorkerRole.AWS, ActivityName.DELETE_LINK, command.key, bool, AWS_CONTROL)
            return LinkCommandResult(removed=removed)
        raise ApplicationError(f"unknown link command {command.action!r}", type=ErrorType.CONFIGURATION_INVALID, non_retryable=True)

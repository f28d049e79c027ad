"""LinkAdmin: operators' changes to tenant links, run as workflows so each one is on record."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts import taskqueues
    from contracts.enrollment import LinkCommand, LinkCommandResult, ListLinksResult
    from contracts.errors import ErrorType
    from contracts.models import ActivityName
    from contracts.providers import WorkerRole
    from workflows import options
    from workflows.shared import upsert


@workflow.defn(name="LinkAdmin")
class LinkAdminWorkflow:
    @workflow.run
    async def run(self, command: LinkCommand) -> LinkCommandResult:
        queue = taskqueues.for_role(WorkerRole.AWS, command.queue_prefix)
        kwargs = options.AWS_CONTROL.kwargs()
        if command.action == "list":
            listed: ListLinksResult = await workflow.execute_activity(
                ActivityName.LIST_LINKS, task_queue=queue, result_type=ListLinksResult, **kwargs
            )
            return LinkCommandResult(links=listed.links)
        if command.action == "put" and command.link is not None:
            link = command.link
            upsert(
                sa.PROVIDER.value_set(link.provider.value),
                sa.CLOUD_ACCOUNT.value_set(link.cloud_account),
                sa.CUSTOMER.value_set(link.customer),
            )
            await workflow.execute_activity(ActivityName.PUT_LINK, link, task_queue=queue, **kwargs)
            return LinkCommandResult(links=[link])
        if command.action == "delete" and command.key is not None:
            upsert(sa.PROVIDER.value_set(command.key.provider.value), sa.CLOUD_ACCOUNT.value_set(command.key.cloud_account))
            removed: bool = await workflow.execute_activity(
                ActivityName.DELETE_LINK, command.key, task_queue=queue, result_type=bool, **kwargs
            )
            return LinkCommandResult(removed=removed)
        raise ApplicationError(f"unknown link command {command.action!r}", type=ErrorType.CONFIGURATION_INVALID, non_retryable=True)

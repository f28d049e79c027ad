"""SsmConfiguration: apply one configuration version to one systems account, once.

Its id names the account and the version (``ssm-config/{account}/v{N}``), so every enrollment
into the account shares one run per version and a new version re-applies idempotently.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts import taskqueues
    from contracts.enrollment import SsmConfigurationInput, SsmConfigurationResult
    from contracts.models import ActivityName
    from contracts.providers import WorkerRole
    from workflows import options
    from workflows.shared import upsert


@workflow.defn(name="SsmConfiguration")
class SsmConfigurationWorkflow:
    @workflow.run
    async def run(self, inp: SsmConfigurationInput) -> SsmConfigurationResult:
        upsert(sa.SYSTEMS_ACCOUNT.value_set(inp.account.account_id))
        return await workflow.execute_activity(
            ActivityName.APPLY_SSM_CONFIGURATION,
            inp,
            task_queue=taskqueues.for_role(WorkerRole.AWS, inp.queue_prefix),
            result_type=SsmConfigurationResult,
            **options.AWS_CONTROL.kwargs(),
        )

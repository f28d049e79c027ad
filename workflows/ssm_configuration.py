"""SsmConfiguration: apply one configuration version to one systems account, once.

Its id names the account and the version (``ssm-config/{account}/v{N}``), so every enrollment
into the account shares one run per version and a new version re-applies idempotently.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts.enrollment import SsmConfigurationInput, SsmConfigurationResult
    from contracts.models import ActivityName
    from contracts.names import WorkflowName
    from contracts.providers import WorkerRole
    from workflows import options
    from workflows.calls import Calls
    from workflows.shared import upsert


@workflow.defn(name=WorkflowName.SSM_CONFIGURATION)
class SsmConfigurationWorkflow:
    @workflow.run
    async def run(self, inp: SsmConfigurationInput) -> SsmConfigurationResult:
        upsert(sa.SYSTEMS_ACCOUNT.value_set(inp.account.account_id))
        return await Calls(inp.queue_prefix).activity(
            WorkerRole.AWS, ActivityName.APPLY_SSM_CONFIGURATION, inp, SsmConfigurationResult, options.AWS_CONTROL
        )

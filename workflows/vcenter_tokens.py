"""VcenterTokens: one run of a linked vCenter's token schedule (``vcenter-tokens/{vcenter}``).

The link (aws worker) names the customer, the token keys and the folder or resource pool; the
vmware worker then writes a token to each labelled VM inside it that lacks a valid one, and
rotates those about to expire. An unlinked vCenter gets nothing.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.enrollment import GetLinkResult, LinkKey
    from contracts.models import ActivityName, IssueTokensInput, IssueTokensResult, VcenterTokensInput
    from contracts.names import WorkflowName
    from contracts.providers import Provider, WorkerRole
    from workflows import options
    from workflows.calls import Calls


@workflow.defn(name=WorkflowName.VCENTER_TOKENS)
class VcenterTokensWorkflow:
    @workflow.run
    async def run(self, inp: VcenterTokensInput) -> IssueTokensResult:
        calls = Calls(inp.queue_prefix)
        key = LinkKey(provider=Provider.VMWARE, cloud_account=inp.vcenter_id)
        found = await calls.activity(WorkerRole.AWS, ActivityName.GET_LINK, key, GetLinkResult, options.AWS_CONTROL)
        if found.link is None:
            workflow.logger.info("vCenter not linked: no tokens", extra={"vcenter": inp.vcenter_id})
            return IssueTokensResult(linked=False)
        link = found.link
        issue = IssueTokensInput(
            vcenter_id=inp.vcenter_id,
            customer=link.customer,  # the token's signed customer is always the link's
            public_keys=link.vcenter_public_keys,
            scope=link.vcenter_scope,
            patching_label=inp.patching_label,
            force=inp.force,
        )
        return await calls.activity(
            WorkerRole.VMWARE, ActivityName.ISSUE_VCENTER_TOKENS, issue, IssueTokensResult, options.CLOUD_WRITE
        )

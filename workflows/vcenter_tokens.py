"""VcenterTokens: one vmware link's VMs hold valid fleetpatch tokens, with no operator.

Run by the schedule ``vcenter-tokens/{link id}`` (every few minutes; the link id is the vCenter's,
or ``{vcenter}:{name}`` for one of several links of a shared vCenter): labelled VMs that lack a
valid token get one, tokens near their expiry are rotated (vmware worker). ``fleetpatch vcenter
issue-tokens`` stays as the manual trigger.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts.models import ActivityName
    from contracts.names import WorkflowName
    from contracts.providers import Provider, WorkerRole
    from contracts.vcenter_tokens import VcenterTokensInput, VcenterTokensResult
    from workflows.calls import Calls
    from workflows.options import CLOUD_LIST
    from workflows.shared import upsert


@workflow.defn(name=WorkflowName.VCENTER_TOKENS)
class VcenterTokensWorkflow:
    @workflow.run
    async def run(self, inp: VcenterTokensInput) -> VcenterTokensResult:
        upsert(sa.PROVIDER.value_set(Provider.VMWARE.value), sa.CLOUD_ACCOUNT.value_set(inp.vcenter_id),
               sa.CUSTOMER.value_set(inp.customer))
        return await Calls(inp.queue_prefix).activity(
            WorkerRole.VMWARE, ActivityName.ENSURE_VCENTER_TOKENS, inp, VcenterTokensResult, CLOUD_LIST
        )

"""AllowReenrollment: an operator lifts trust-on-first-use for one VM.

Enrolled means: a hybrid managed instance tagged with the VM's instance key in its systems
account, or (EC2) the instance tagged by an enrollment. Deregistering that managed instance, or
removing that tag, lets the VM's next registration enrol it afresh.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts.enrollment import (
        TAG_ENROLLMENT_ID,
        AccountLookup,
        AccountRef,
        DeregisterInput,
        Ec2UntagInput,
        FoundAccount,
        GetLinkResult,
        LinkKey,
        ManagedInstanceQuery,
        ManagedInstanceResult,
        ReenrollInput,
        ReenrollResult,
        TenantLink,
    )
    from contracts.errors import ErrorType
    from contracts.models import ActivityName
    from contracts.names import WorkflowName
    from contracts.providers import PROVIDER_ROLE, Provider, WorkerRole
    from workflows.calls import Calls
    from workflows.options import AWS_CONTROL, CLOUD_READ
    from workflows.shared import upsert


@workflow.defn(name=WorkflowName.ALLOW_REENROLLMENT)
class AllowReenrollmentWorkflow:
    @workflow.run
    async def run(self, inp: ReenrollInput) -> ReenrollResult:
        cloud_account, _, instance_id = inp.instance_key.partition("/")
        upsert(sa.PROVIDER.value_set(inp.provider.value), sa.INSTANCE_KEY.value_set(inp.instance_key))
        calls = Calls(inp.queue_prefix)
        link = await self._link(calls, inp.provider, cloud_account)
        upsert(sa.CUSTOMER.value_set(link.customer), sa.CLOUD_ACCOUNT.value_set(cloud_account))
        if inp.provider is Provider.AWS:
            return await self._untag_ec2(calls, inp, link, cloud_account, instance_id)
        return await self._deregister_hybrid(calls, inp, link, cloud_account)

    @staticmethod
    async def _link(calls: Calls, provider: Provider, cloud_account: str) -> TenantLink:
        found = await calls.activity(
            WorkerRole.AWS, ActivityName.GET_LINK, LinkKey(provider=provider, cloud_account=cloud_account),
            GetLinkResult, AWS_CONTROL,
        )
        if found.link is None:
            raise ApplicationError(f"{provider.value}/{cloud_account} is not linked", type=ErrorType.TENANT_NOT_LINKED, non_retryable=True)
        return found.link

    @staticmethod
    async def _untag_ec2(calls: Calls, inp: ReenrollInput, link: TenantLink, cloud_account: str, instance_id: str) -> ReenrollResult:
        """EC2: enrolled means tagged by an enrollment; removing the tag lifts it."""
        untag = Ec2UntagInput(account_id=cloud_account, region=inp.region, instance_id=instance_id,
                              role_arn=link.role_arn, external_id=link.external_id, keys=[TAG_ENROLLMENT_ID])
        await calls.activity(PROVIDER_ROLE[inp.provider], ActivityName.UNTAG_EC2_INSTANCE, untag, None, CLOUD_READ)
        return ReenrollResult(done=f"removed {TAG_ENROLLMENT_ID} from {instance_id}")

    @staticmethod
    async def _deregister_hybrid(calls: Calls, inp: ReenrollInput, link: TenantLink, cloud_account: str) -> ReenrollResult:
        """Hybrid: enrolled means a managed instance with the VM's key; deregistering it lifts it."""
        lookup = AccountLookup(provider=inp.provider, cloud_account=cloud_account, customer=link.customer)
        account = await calls.activity(WorkerRole.AWS, ActivityName.FIND_SYSTEMS_ACCOUNT, lookup, FoundAccount, AWS_CONTROL)
        if account.account_id is None or account.role_arn is None:
            return ReenrollResult(done="nothing to undo: no systems account serves this cloud account yet")
        ref = AccountRef(account_id=account.account_id, role_arn=account.role_arn)
        managed = await calls.activity(
            WorkerRole.AWS, ActivityName.FIND_MANAGED_INSTANCE, ManagedInstanceQuery(account=ref, instance_key=inp.instance_key),
            ManagedInstanceResult, AWS_CONTROL,
        )
        if managed.instance is None:
            return ReenrollResult(done="nothing to undo: the VM is not a managed instance")
        instance_id = managed.instance.instance_id
        await calls.activity(
            WorkerRole.AWS, ActivityName.DEREGISTER_MANAGED_INSTANCE, DeregisterInput(account=ref, instance_id=instance_id),
            None, AWS_CONTROL,
        )
        return ReenrollResult(done=f"deregistered managed instance {instance_id}", managed_instance_id=instance_id)

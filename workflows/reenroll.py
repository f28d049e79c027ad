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
    from contracts import taskqueues
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
    )
    from contracts.errors import ErrorType
    from contracts.models import ActivityName
    from contracts.providers import Provider, WorkerRole
    from workflows import options
    from workflows.shared import upsert


@workflow.defn(name="AllowReenrollment")
class AllowReenrollmentWorkflow:
    @workflow.run
    async def run(self, inp: ReenrollInput) -> ReenrollResult:
        cloud_account, _, instance_id = inp.instance_key.partition("/")
        upsert(sa.PROVIDER.value_set(inp.provider.value), sa.INSTANCE_KEY.value_set(inp.instance_key))
        aws = taskqueues.for_role(WorkerRole.AWS, inp.queue_prefix)
        kwargs = options.AWS_CONTROL.kwargs()
        found: GetLinkResult = await workflow.execute_activity(
            ActivityName.GET_LINK, LinkKey(provider=inp.provider, cloud_account=cloud_account),
            task_queue=aws, result_type=GetLinkResult, **kwargs,
        )
        link = found.link
        if link is None:
            raise ApplicationError(f"{inp.provider.value}/{cloud_account} is not linked", type=ErrorType.TENANT_NOT_LINKED, non_retryable=True)
        upsert(sa.CUSTOMER.value_set(link.customer), sa.CLOUD_ACCOUNT.value_set(cloud_account))

        if inp.provider is Provider.AWS:
            await workflow.execute_activity(
                ActivityName.UNTAG_EC2_INSTANCE,
                Ec2UntagInput(account_id=cloud_account, region=inp.region, instance_id=instance_id,
                              role_arn=link.role_arn, external_id=link.external_id, keys=[TAG_ENROLLMENT_ID]),
                task_queue=taskqueues.for_provider(inp.provider, inp.queue_prefix), **options.CLOUD_READ.kwargs(),
            )
            return ReenrollResult(done=f"removed {TAG_ENROLLMENT_ID} from {instance_id}")

        account: FoundAccount = await workflow.execute_activity(
            ActivityName.FIND_SYSTEMS_ACCOUNT,
            AccountLookup(provider=inp.provider, cloud_account=cloud_account, customer=link.customer),
            task_queue=aws, result_type=FoundAccount, **kwargs,
        )
        if account.account_id is None or account.role_arn is None:
            return ReenrollResult(done="nothing to undo: no systems account serves this cloud account yet")
        ref = AccountRef(account_id=account.account_id, role_arn=account.role_arn)
        managed: ManagedInstanceResult = await workflow.execute_activity(
            ActivityName.FIND_MANAGED_INSTANCE, ManagedInstanceQuery(account=ref, instance_key=inp.instance_key),
            task_queue=aws, result_type=ManagedInstanceResult, **kwargs,
        )
        if managed.instance is None:
            return ReenrollResult(done="nothing to undo: the VM is not a managed instance")
        await workflow.execute_activity(
            ActivityName.DEREGISTER_MANAGED_INSTANCE, DeregisterInput(account=ref, instance_id=managed.instance.instance_id),
            task_queue=aws, **kwargs,
        )
        return ReenrollResult(
            done=f"deregistered managed instance {managed.instance.instance_id}",
            managed_instance_id=managed.instance.instance_id,
        )

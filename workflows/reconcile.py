"""Reconcile: keep one linked cloud account's managed instances true to its cloud.

Named steps: the link -> the systems account -> the cloud's VMs (its own worker, its own SDK)
-> the managed instances and pending activations (aws worker) -> the plan
(``workflows.reconcile_plan``, pure) -> apply each action (unless a dry run), each with its
evidence in the result and in the estate store (aws worker) -> bring the account's SSM configuration and window schedules up to this
release (configuration drift), with no re-link. Run hourly by the schedule ``reconcile/{provider}/{cloud account}`` and
on demand (``fleetpatch reconcile``, ``POST /v1/admin/reconcile``).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import ids
    from contracts import search_attributes as sa
    from contracts.enrollment import (
        SSM_CONFIGURATION_VERSION,
        TAG_ENROLLMENT_ID,
        AccountLookup,
        AccountRef,
        Ec2TagInput,
        Ec2UntagInput,
        FoundAccount,
        GetLinkResult,
        LinkKey,
        SsmConfigurationInput,
        SsmConfigurationResult,
        TenantLink,
    )
    from contracts.errors import ErrorType
    from contracts.models import ActivityName, VmMetadata
    from contracts.names import WorkflowName
    from contracts.patching import EnsureWindowsInput
    from contracts.providers import PROVIDER_ROLE, Provider, WorkerRole
    from contracts.reconcile import (
        REPORT_ONLY,
        ActionKind,
        ApplyActionInput,
        ListCloudVmsInput,
        ListCloudVmsResult,
        ListManagedInput,
        ListManagedResult,
        ReconcileAction,
        RecordReconcileInput,
        ReconcileInput,
        ReconcileResult,
    )
    from workflows.calls import Calls
    from workflows.options import AWS_CONTROL, CLOUD_LIST, CLOUD_READ, ESTATE_WRITE
    from workflows.reconcile_plan import EC2_FLEETPATCH_TAGS, only_key, plan_ec2, plan_hybrid, plan_offboard
    from workflows.patch_schedules import ensure_windows
    from workflows.shared import application_error, upsert
    from workflows.ssm_configuration import SsmConfigurationWorkflow


#: Runs started before this release record nothing in the estate store (their histories replay).
RECORDS_ACTIONS = "reconcile-records-actions"
#: Runs started before this release deregistered an online agent whose VM the list missed.
KEEPS_ONLINE_ABSENT = "reconcile-keeps-online-absent"


@workflow.defn(name=WorkflowName.RECONCILE)
class ReconcileWorkflow:
    @workflow.run
    async def run(self, inp: ReconcileInput) -> ReconcileResult:
        calls = Calls(inp.queue_prefix)
        upsert(sa.PROVIDER.value_set(inp.provider.value), sa.CLOUD_ACCOUNT.value_set(inp.cloud_account))
        link = await self._link(calls, inp)
        upsert(sa.CUSTOMER.value_set(link.customer))
        account = await self._systems_account(calls, inp, link)
        listing = ListCloudVmsInput(
            provider=inp.provider, cloud_account=inp.cloud_account, role_arn=link.role_arn, external_id=link.external_id,
            scope=link.vcenter_scope,
        )
        vms = await calls.activity(PROVIDER_ROLE[inp.provider], ActivityName.LIST_CLOUD_VMS, listing, ListCloudVmsResult, CLOUD_LIST)
        result = ReconcileResult(
            provider=inp.provider, cloud_account=inp.cloud_account, dry_run=inp.dry_run,
            systems_account=account.account_id if account else None, vms_seen=len(vms.vms), managed_seen=0,
        )
        managed = ListManagedResult(nodes=[])
        if inp.provider is not Provider.AWS:
            managed = await self._managed(calls, inp, account)
            result.managed_seen = len(managed.nodes)
        result.actions = only_key(_plan(inp, link, vms.vms, managed), inp.instance_key)
        if not inp.dry_run:
            for action in result.actions:
                await self._apply(calls, inp, link, account, action)
            if result.actions and workflow.patched(RECORDS_ACTIONS):
                await _record(calls, inp, link, result)
            if account is not None and not inp.offboard and _configured(inp, vms.vms):
                await _bring_up_to_date(calls, inp, link, account, result)
        return result

    @staticmethod
    async def _link(calls: Calls, inp: ReconcileInput) -> TenantLink:
        key = LinkKey(provider=inp.provider, cloud_account=inp.cloud_account)
        found = await calls.activity(WorkerRole.AWS, ActivityName.GET_LINK, key, GetLinkResult, AWS_CONTROL)
        if found.link is None:
            raise ApplicationError(
                f"{inp.provider.value}/{inp.cloud_account} is not linked", type=ErrorType.TENANT_NOT_LINKED, non_retryable=True
            )
        return found.link

    @staticmethod
    async def _systems_account(calls: Calls, inp: ReconcileInput, link: TenantLink) -> AccountRef | None:
        """The account whose SSM holds this cloud account's VMs (EC2: the customer's own)."""
        if inp.provider is Provider.AWS:
            if link.role_arn is None:
                return None
            return AccountRef(account_id=inp.cloud_account, role_arn=link.role_arn, external_id=link.external_id)
        lookup = AccountLookup(provider=inp.provider, cloud_account=inp.cloud_account, customer=link.customer)
        found = await calls.activity(WorkerRole.AWS, ActivityName.FIND_SYSTEMS_ACCOUNT, lookup, FoundAccount, AWS_CONTROL)
        if found.account_id is None or found.role_arn is None:
            return None  # nothing enrolled yet: every labelled VM is reported
        upsert(sa.SYSTEMS_ACCOUNT.value_set(found.account_id))
        return AccountRef(account_id=found.account_id, role_arn=found.role_arn)

    @staticmethod
    async def _managed(calls: Calls, inp: ReconcileInput, account: AccountRef | None) -> ListManagedResult:
        if account is None:
            return ListManagedResult(nodes=[])
        query = ListManagedInput(account=account, provider=inp.provider, cloud_account=inp.cloud_account)
        return await calls.activity(WorkerRole.AWS, ActivityName.LIST_MANAGED_NODES, query, ListManagedResult, AWS_CONTROL)

    @staticmethod
    async def _apply(
        calls: Calls, inp: ReconcileInput, link: TenantLink, account: AccountRef | None, action: ReconcileAction
    ) -> None:
        """Apply one action; a failure is recorded on it and the run goes on with the rest."""
        if action.kind in REPORT_ONLY or account is None:
            return
        try:
            if action.kind in (ActionKind.EC2_RETAG, ActionKind.EC2_UNTAG):
                await _apply_ec2(calls, inp, link, action)
            else:
                apply = ApplyActionInput(account=account, action=action)
                await calls.activity(WorkerRole.AWS, ActivityName.APPLY_RECONCILE_ACTION, apply, None, AWS_CONTROL)
        except ActivityError as err:
            failure = application_error(err)
            action.error = f"{failure.type}: {failure.message}"
            return
        action.applied = True


def _plan(inp: ReconcileInput, link: TenantLink, vms: list[VmMetadata], managed: ListManagedResult) -> list[ReconcileAction]:
    """What this run does: offboarding, or keeping SSM true to the cloud (pure: reconcile_plan)."""
    ec2 = inp.provider is Provider.AWS
    if inp.offboard:
        reason = "offboarded by an operator" + (f": {inp.instance_key}" if inp.instance_key else "")
        return plan_offboard(inp.cloud_account, vms, managed.nodes, managed.activations, ec2=ec2, reason=reason)
    group = link.default_patch_group.value
    if ec2:
        return plan_ec2(inp.cloud_account, vms, inp.policy, group)
    keep_online = workflow.patched(KEEPS_ONLINE_ABSENT)
    return plan_hybrid(inp.cloud_account, vms, managed.nodes, managed.activations, inp.policy, group, keep_online)


async def _record(calls: Calls, inp: ReconcileInput, link: TenantLink, result: ReconcileResult) -> None:
    """Every action, applied, failed or reported, with its evidence, into the estate store."""
    info = workflow.info()
    run = RecordReconcileInput(
        provider=inp.provider, cloud_account=inp.cloud_account, customer=link.customer,
        systems_account=result.systems_account, workflow_id=info.workflow_id, run_id=info.run_id,
        at=workflow.now(), actions=result.actions,
    )
    await calls.activity(WorkerRole.AWS, ActivityName.RECORD_RECONCILE_ACTIONS, run, int, ESTATE_WRITE)


def _configured(inp: ReconcileInput, vms: list[VmMetadata]) -> bool:
    """Whether the account has fleetpatch's SSM configuration to keep current: a vended systems
    account always; a customer's own EC2 account once an enrollment tagged one of its instances."""
    return inp.provider is not Provider.AWS or any(TAG_ENROLLMENT_ID in vm.labels for vm in vms)


async def _bring_up_to_date(
    calls: Calls, inp: ReconcileInput, link: TenantLink, account: AccountRef, result: ReconcileResult
) -> None:
    """Configuration drift: the release's SSM configuration version (a shared child, once per
    version and account) and the window schedules as this release shapes them, with no re-link."""
    version = inp.configuration_version or SSM_CONFIGURATION_VERSION
    applied = await calls.shared_child(
        SsmConfigurationWorkflow.run,
        SsmConfigurationInput(account=account, version=version, queue_prefix=inp.queue_prefix),
        id=ids.ssm_configuration(account.account_id, version),
        result_type=SsmConfigurationResult,
    )
    result.configuration_version = applied.version
    windows = await ensure_windows(EnsureWindowsInput(
        account=account, customer=link.customer, provider=inp.provider.value, cloud_account=inp.cloud_account,
        time_zone=link.time_zone, windows=link.windows, queue_prefix=inp.queue_prefix,
    ))
    result.windows_ensured = (windows.created + windows.updated) if windows else []


async def _apply_ec2(calls: Calls, inp: ReconcileInput, link: TenantLink, action: ReconcileAction) -> None:
    """EC2 actions are tag changes on the instance, in the customer's account (ec2 worker)."""
    region = action.evidence.get("region") or "us-east-1"
    role = PROVIDER_ROLE[inp.provider]
    if action.kind is ActionKind.EC2_RETAG:
        tag = Ec2TagInput(account_id=inp.cloud_account, region=region, instance_id=action.target,
                          role_arn=link.role_arn, external_id=link.external_id, tags=action.tags)
        await calls.activity(role, ActivityName.TAG_EC2_INSTANCE, tag, None, CLOUD_READ)
        return
    untag = Ec2UntagInput(account_id=inp.cloud_account, region=region, instance_id=action.target,
                          role_arn=link.role_arn, external_id=link.external_id, keys=list(EC2_FLEETPATCH_TAGS))
    await calls.activity(role, ActivityName.UNTAG_EC2_INSTANCE, untag, None, CLOUD_READ)

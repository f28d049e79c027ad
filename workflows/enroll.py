"""EnrollVm: one VM from its signed identity to a managed instance in its customer's systems account.

verify (provider queue) -> tenant link -> labels (provider queue) -> systems account (shared
child) -> SSM configuration (shared child, once per version) -> trust on first use -> activation
(answered to the waiting API call through the ``register`` update) -> agent online -> tags
confirmed. EC2 differs: no activation; the instance is tagged and must report to SSM itself.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from contracts import ids, taskqueues
    from contracts import search_attributes as sa
    from contracts.enrollment import (
        SSM_CONFIGURATION_VERSION,
        TAG_CLOUD_ACCOUNT,
        TAG_CUSTOMER,
        TAG_ENROLLMENT_ID,
        TAG_INSTANCE_KEY,
        TAG_PATCH_GROUP,
        TAG_PROVIDER,
        AccountRef,
        Activation,
        ActivationRequest,
        DeleteActivationInput,
        Ec2TagInput,
        EnrollInput,
        EnrollmentState,
        EnrollmentStatus,
        EnrollmentStatusQuery,
        EnrollResult,
        GetLinkResult,
        LinkKey,
        ManagedInstance,
        ManagedInstanceQuery,
        ManagedInstanceResult,
        RegistrationAnswer,
        SsmConfigurationInput,
        SsmConfigurationResult,
        SystemsAccount,
        SystemsAccountInput,
        TagManagedInstanceInput,
        TenantLink,
    )
    from contracts.errors import IDENTITY_REFUSALS, ErrorType
    from contracts.identity import VerifiedIdentity
    from contracts.models import ActivityName, VerifyIdentityInput, VmMetadata, VmMetadataInput
    from contracts.providers import PatchGroup, Provider, WorkerRole
    from workflows import options
    from workflows.shared import application_error, shared_child, upsert
    from workflows.ssm_configuration import SsmConfigurationWorkflow
    from workflows.systems_account import SystemsAccountWorkflow

#: Refusals: the VM (or its tenant) may not enroll. Everything else that fails is a failure.
_REFUSALS = {t.value for t in IDENTITY_REFUSALS} | {
    ErrorType.TENANT_NOT_LINKED.value,
    ErrorType.PATCHING_NOT_ENABLED.value,
    ErrorType.PATCH_GROUP_INVALID.value,
    ErrorType.ALREADY_ENROLLED.value,
    ErrorType.INSTANCE_NOT_FOUND.value,
    ErrorType.INSTANCE_NOT_RUNNING.value,
}


def _refuse(kind: ErrorType, reason: str) -> ApplicationError:
    return ApplicationError(reason, type=kind.value, non_retryable=True)


@workflow.defn(name="EnrollVm")
class EnrollVmWorkflow:
    def __init__(self) -> None:
        self._state = EnrollmentState.VERIFYING
        self._answer: RegistrationAnswer | None = None
        self._failure: ApplicationError | None = None
        self._secret_digest = ""
        self._answered = False

    # --- the API's view --------------------------------------------------------------------

    @workflow.update(name="register")
    async def register(self) -> RegistrationAnswer:
        """Answers once the activation exists (or the EC2 instance is tagged), or the refusal."""
        self._answered = True
        await workflow.wait_condition(lambda: self._answer is not None or self._failure is not None)
        if self._answer is not None:
            return self._answer
        assert self._failure is not None
        raise self._failure

    @register.validator
    def _one_registration(self) -> None:
        if self._answered:
            raise ApplicationError("this enrollment already has its registration", type=ErrorType.ENROLLMENT_RUNNING.value)

    @workflow.query(name="status")
    def status(self, query: EnrollmentStatusQuery) -> EnrollmentStatus:
        """The state; the answer (with its activation code) only for the enrollment id's holder."""
        if not _same(query.secret_digest, self._secret_digest):
            return EnrollmentStatus(state=self._state)
        return EnrollmentStatus(
            state=self._state,
            owner=True,
            answer=self._answer,
            error_type=self._failure.type if self._failure else None,
            reason=self._failure.message if self._failure else None,
        )

    # --- the enrollment --------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: EnrollInput) -> EnrollResult:
        self._secret_digest = inp.secret_digest
        upsert(sa.PROVIDER.value_set(inp.provider.value), sa.INSTANCE_KEY.value_set(inp.instance_key))
        self._set_state(EnrollmentState.VERIFYING)
        try:
            return await self._enroll(inp)
        except (ActivityError, ChildWorkflowError, ApplicationError) as err:
            failure = err if isinstance(err, ApplicationError) and err.type else application_error(err)
            self._failure = failure
            self._set_state(EnrollmentState.REFUSED if failure.type in _REFUSALS else EnrollmentState.FAILED)
            workflow.logger.info("enrollment ended", extra={"error_type": failure.type})
            # Let a waiting update read the failure before the run closes.
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise failure from None

    async def _enroll(self, inp: EnrollInput) -> EnrollResult:
        provider = inp.provider
        claimed_account, _, claimed_instance = inp.instance_key.partition("/")
        link: TenantLink | None = None
        verify = VerifyIdentityInput(provider=provider, identity=inp.identity, nonce=inp.nonce)
        if provider is Provider.VMWARE:
            # The vCenter's token keys live in its link: look them up by the claimed vCenter, and
            # require the verified token to name that same vCenter below.
            link = await self._link(provider, claimed_account, inp)
            verify.vcenter_public_keys = link.vcenter_public_keys

        identity: VerifiedIdentity = await self._on_provider(ActivityName.VERIFY_IDENTITY, verify, VerifiedIdentity, inp)
        if identity.instance_id != claimed_instance or (identity.cloud_account and identity.cloud_account != claimed_account):
            raise _refuse(
                ErrorType.IDENTITY_INSTANCE_MISMATCH,
                f"the signed identity names {identity.cloud_account}/{identity.instance_id}, not {inp.instance_key}",
            )
        if link is None and identity.cloud_account:
            # The tenant comes from the signed identity: an unlinked account is refused before
            # fleetpatch calls its cloud's API at all.
            link = await self._link(provider, identity.cloud_account, inp)
        metadata: VmMetadata = await self._on_provider(
            ActivityName.READ_VM_METADATA,
            VmMetadataInput(
                identity=identity,
                resource_id=inp.resource_id,
                role_arn=link.role_arn if link else None,
                external_id=link.external_id if link else None,
            ),
            VmMetadata,
            inp,
        )
        # Old Azure documents carry no subscription: ARM placed the attested vmId in it instead.
        cloud_account = identity.cloud_account or metadata.cloud_account
        if cloud_account != claimed_account or metadata.instance_id != identity.instance_id:
            raise _refuse(
                ErrorType.IDENTITY_INSTANCE_MISMATCH,
                f"the cloud's API places this VM in {cloud_account}, not {claimed_account}",
            )
        if link is None:
            link = await self._link(provider, cloud_account, inp)
        upsert(sa.CLOUD_ACCOUNT.value_set(cloud_account), sa.CUSTOMER.value_set(link.customer))

        group = self._patch_group(metadata, link, inp)
        upsert(sa.PATCH_GROUP.value_set(group.value))

        self._set_state(EnrollmentState.VENDING)
        account: SystemsAccount = await shared_child(
            SystemsAccountWorkflow.run,
            SystemsAccountInput(
                provider=provider,
                cloud_account=cloud_account,
                customer=link.customer,
                time_zone=link.time_zone,
                role_arn=link.role_arn if provider is Provider.AWS else None,
                external_id=link.external_id if provider is Provider.AWS else None,
                windows=link.windows,
                queue_prefix=inp.queue_prefix,
            ),
            id=ids.systems_account(provider, cloud_account),
            result_type=SystemsAccount,
            queue_prefix=inp.queue_prefix,
        )
        upsert(sa.SYSTEMS_ACCOUNT.value_set(account.account_id))
        ref = AccountRef(
            account_id=account.account_id, role_arn=account.role_arn, external_id=account.external_id, region=account.region
        )

        self._set_state(EnrollmentState.CONFIGURING)
        config: SsmConfigurationResult = await shared_child(
            SsmConfigurationWorkflow.run,
            SsmConfigurationInput(account=ref, version=SSM_CONFIGURATION_VERSION, queue_prefix=inp.queue_prefix),
            id=ids.ssm_configuration(account.account_id, SSM_CONFIGURATION_VERSION),
            result_type=SsmConfigurationResult,
            queue_prefix=inp.queue_prefix,
        )

        tags = {
            TAG_PATCH_GROUP: group.value,
            TAG_PROVIDER: provider.value,
            TAG_CLOUD_ACCOUNT: cloud_account,
            TAG_CUSTOMER: link.customer,
            TAG_INSTANCE_KEY: inp.instance_key,
            TAG_ENROLLMENT_ID: workflow.info().run_id,
        }
        if provider is Provider.AWS:
            managed = await self._enroll_ec2(inp, identity, metadata, account, ref, group, tags)
            activation_id = None
        else:
            managed, activation_id = await self._enroll_hybrid(inp, ref, config, account, group, tags)

        self._set_state(EnrollmentState.ENROLLED)
        return EnrollResult(
            identity=identity,
            customer=link.customer,
            systems_account=account.account_id,
            patch_group=group,
            managed_instance_id=managed.instance_id,
            activation_id=activation_id,
        )

    async def _enroll_hybrid(
        self,
        inp: EnrollInput,
        ref: AccountRef,
        config: SsmConfigurationResult,
        account: SystemsAccount,
        group: PatchGroup,
        tags: dict[str, str],
    ) -> tuple[ManagedInstance, str]:
        existing = await self._find_managed(ManagedInstanceQuery(account=ref, instance_key=inp.instance_key), inp)
        if existing is not None:
            raise _refuse(
                ErrorType.ALREADY_ENROLLED,
                f"{inp.instance_key} is already managed instance {existing.instance_id}; "
                "an operator must allow re-enrollment",
            )
        activation: Activation = await self._on_aws(
            ActivityName.CREATE_ACTIVATION,
            ActivationRequest(
                account=ref,
                service_role=config.service_role,
                default_instance_name=inp.hostname,
                idempotency_key=f"{workflow.info().workflow_id}/{workflow.info().run_id}",
                tags=tags,
                expiry_seconds=inp.policy.activation_expiry_seconds,
            ),
            Activation,
            inp,
        )
        self._answer = RegistrationAnswer(
            enrollment_id="", systems_account=account.account_id, patch_group=group.value, activation=activation
        )
        self._set_state(EnrollmentState.AWAITING_AGENT)
        try:
            managed = await self._await_online(ManagedInstanceQuery(account=ref, activation_id=activation.id), inp)
        except ApplicationError:
            await self._on_aws(ActivityName.DELETE_ACTIVATION, DeleteActivationInput(account=ref, activation_id=activation.id), None, inp)
            raise
        await self._confirm_tags(ref, managed, tags, inp)
        # Its one registration is used: the activation has nothing left to give.
        await self._on_aws(ActivityName.DELETE_ACTIVATION, DeleteActivationInput(account=ref, activation_id=activation.id), None, inp)
        return managed, activation.id

    async def _enroll_ec2(
        self,
        inp: EnrollInput,
        identity: VerifiedIdentity,
        metadata: VmMetadata,
        account: SystemsAccount,
        ref: AccountRef,
        group: PatchGroup,
        tags: dict[str, str],
    ) -> ManagedInstance:
        # Enrolled means tagged by an earlier enrollment AND reporting to SSM; a tag left by an
        # enrollment whose agent never reported does not block a new attempt.
        earlier = metadata.labels.get(TAG_ENROLLMENT_ID)
        if earlier and await self._find_managed(ManagedInstanceQuery(account=ref, instance_id=identity.instance_id), inp):
            raise _refuse(
                ErrorType.ALREADY_ENROLLED,
                f"{inp.instance_key} already carries enrollment {metadata.labels[TAG_ENROLLMENT_ID]}; "
                "an operator must allow re-enrollment",
            )
        await self._on_provider(
            ActivityName.TAG_EC2_INSTANCE,
            Ec2TagInput(
                account_id=identity.cloud_account,
                region=identity.region or ref.region,
                instance_id=identity.instance_id,
                role_arn=account.role_arn,
                external_id=account.external_id,
                tags=tags,
            ),
            None,
            inp,
        )
        self._answer = RegistrationAnswer(
            enrollment_id="",
            systems_account=account.account_id,
            patch_group=group.value,
            managed_instance_id=identity.instance_id,
        )
        self._set_state(EnrollmentState.AWAITING_AGENT)
        return await self._await_online(ManagedInstanceQuery(account=ref, instance_id=identity.instance_id), inp)

    # --- steps -----------------------------------------------------------------------------

    def _patch_group(self, metadata: VmMetadata, link: TenantLink, inp: EnrollInput) -> PatchGroup:
        enabled = metadata.labels.get(inp.policy.patching_label, "")
        if enabled.strip().lower() != "true":
            raise _refuse(
                ErrorType.PATCHING_NOT_ENABLED,
                f"label {inp.policy.patching_label!r} is {enabled or 'absent'!r}, not 'true'",
            )
        wanted = metadata.labels.get(inp.policy.patch_group_label, "").strip().lower()
        if not wanted:
            return PatchGroup(link.default_patch_group)
        try:
            return PatchGroup(wanted)
        except ValueError:
            allowed = ", ".join(g.value for g in PatchGroup)
            raise _refuse(
                ErrorType.PATCH_GROUP_INVALID, f"label {inp.policy.patch_group_label!r} is {wanted!r}; use one of {allowed}"
            ) from None

    async def _link(self, provider: Provider, cloud_account: str, inp: EnrollInput) -> TenantLink:
        result: GetLinkResult = await self._on_aws(
            ActivityName.GET_LINK, LinkKey(provider=provider, cloud_account=cloud_account), GetLinkResult, inp
        )
        if result.link is None:
            raise _refuse(ErrorType.TENANT_NOT_LINKED, f"{provider.value} account {cloud_account!r} is not linked to a customer")
        return result.link

    async def _find_managed(self, query: ManagedInstanceQuery, inp: EnrollInput) -> ManagedInstance | None:
        found: ManagedInstanceResult = await self._on_aws(ActivityName.FIND_MANAGED_INSTANCE, query, ManagedInstanceResult, inp)
        return found.instance

    async def _await_online(self, query: ManagedInstanceQuery, inp: EnrollInput) -> ManagedInstance:
        timeout = timedelta(seconds=inp.policy.agent_online_timeout_seconds)
        try:
            found: ManagedInstanceResult = await self._on_aws(
                ActivityName.AWAIT_MANAGED_INSTANCE,
                query,
                ManagedInstanceResult,
                inp,
                preset=options.POLL_FLAT,
                schedule_to_close_timeout=timeout,
            )
        except ActivityError as err:
            # The retry budget ran out: the last cause is either the timeout or the last "not yet".
            if isinstance(err.cause, TimeoutError) or getattr(err.cause, "type", None) == ErrorType.AGENT_NOT_READY.value:
                raise _refuse(
                    ErrorType.AGENT_REGISTRATION_TIMEOUT,
                    f"the SSM agent did not come online within {timeout}; its activation was deleted",
                ) from None
            raise
        assert found.instance is not None
        return found.instance

    async def _confirm_tags(self, ref: AccountRef, managed: ManagedInstance, tags: dict[str, str], inp: EnrollInput) -> None:
        missing = {k: v for k, v in tags.items() if managed.tags.get(k) != v}
        if not missing:
            return
        await self._on_aws(
            ActivityName.TAG_MANAGED_INSTANCE,
            TagManagedInstanceInput(account=ref, instance_id=managed.instance_id, tags=missing),
            None,
            inp,
        )
        again = await self._find_managed(ManagedInstanceQuery(account=ref, instance_id=managed.instance_id), inp)
        if again is None or any(again.tags.get(k) != v for k, v in tags.items()):
            raise _refuse(ErrorType.AGENT_TAGS_MISMATCH, f"{managed.instance_id} does not hold its tags {sorted(missing)}")

    # --- plumbing --------------------------------------------------------------------------

    def _set_state(self, state: EnrollmentState) -> None:
        self._state = state
        upsert(sa.ENROLLMENT_STATE.value_set(state.value))

    async def _on_provider(self, name: str, arg: object, result_type: type | None, inp: EnrollInput):
        return await workflow.execute_activity(
            name,
            arg,
            task_queue=taskqueues.for_provider(inp.provider, inp.queue_prefix),
            result_type=result_type,
            **options.CLOUD_READ.kwargs(),
        )

    async def _on_aws(self, name: str, arg: object, result_type: type | None, inp: EnrollInput, preset=options.AWS_CONTROL, **extra):
        kwargs = preset.kwargs()
        kwargs.update(extra)
        return await workflow.execute_activity(
            name,
            arg,
            task_queue=taskqueues.for_role(WorkerRole.AWS, inp.queue_prefix),
            result_type=result_type,
            **kwargs,
        )


def _same(a: str, b: str) -> bool:
    """Constant-time comparison of two digests (deterministic; safe in a query)."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a.encode(), b.encode(), strict=True):
        diff |= x ^ y
    return diff == 0 and bool(a)

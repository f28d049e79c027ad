"""EnrollVm: one VM from its signed identity to a managed instance in its customer's systems account.

verify (provider queue) -> tenant link -> labels (provider queue) -> systems account (shared
child) -> SSM configuration (shared child, once per version) -> trust on first use -> activation
(answered to the waiting API call through the ``register`` update) -> agent online -> tags
confirmed. EC2 differs: no activation; the instance is tagged and must report to SSM itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributePair
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts.enrollment import (
        TAG_CLOUD_ACCOUNT,
        TAG_CUSTOMER,
        TAG_ENROLLMENT_ID,
        TAG_INSTANCE_KEY,
        TAG_PATCH_GROUP,
        TAG_PROVIDER,
        AccountRef,
        DeleteActivationInput,
        EnrollInput,
        EnrollmentState,
        EnrollmentStatus,
        EnrollmentStatusQuery,
        EnrollResult,
        ManagedInstance,
        ManagedInstanceQuery,
        RegisterRequest,
        RegistrationAnswer,
        SsmConfigurationResult,
        SystemsAccount,
        TenantLink,
    )
    from contracts.errors import ErrorType
    from contracts.identity import VerifiedIdentity
    from contracts.models import (
        ActivityName,
        RemoteAccessInput,
        RemoteAccessResult,
        VerifyIdentityInput,
        VmMetadata,
        VmMetadataInput,
    )
    from contracts.names import QueryName, UpdateName, WorkflowName
    from contracts.providers import PatchGroup, Provider
    from workflows import options
    from workflows.calls import Calls
    from workflows.enroll_steps import MAX_REISSUES, REFUSALS, REISSUE_ACTIVATION, EnrollSteps, Rechecks, refuse
    from workflows.shared import application_error, upsert
    from workflows import enroll_setup as setup

#: a refusal completes the run with a refused result instead of failing it
REFUSAL_COMPLETES = "refusal-completes"
#: Patch marker: the short path. The tenant link is read beside the verification; the shared
#: children's completed results are read in one local activity (children only when they have not
#: completed); trust on first use and the activation are one activity; search attributes set
#: together. Runs from before it keep the old command sequence.
FEWER_EVENTS = "enroll-fewer-events"


@workflow.defn(name=WorkflowName.ENROLL_VM)
class EnrollVmWorkflow:
    def __init__(self) -> None:
        self._state = EnrollmentState.VERIFYING
        self._answer: RegistrationAnswer | None = None
        self._failure: ApplicationError | None = None
        self._owners: list[str] = []  # digests of the enrollment ids answered by this run
        self._answered = False
        self._rechecks = Rechecks()
        self._verified_at: datetime | None = None  # when the provider's worker verified the identity
        self._fewer = False  # FEWER_EVENTS: this run takes the short path

    # --- the API's view --------------------------------------------------------------------

    @workflow.update(name=UpdateName.REGISTER)
    async def register(self, again: RegisterRequest | None = None) -> RegistrationAnswer:
        """Answers once the activation exists (or the EC2 instance is tagged), or the refusal.

        A VM whose answer was lost registers again (the API verified its fresh identity first)
        and gets the same answer; the new enrollment id it carries may poll this run too.
        """
        self._answered = True
        if again is not None and again.secret_digest and again.secret_digest not in self._owners:
            if len(self._owners) >= _MAX_OWNERS:
                self._owners.pop(1)  # bounded: the oldest retry's id stops polling, the first one stays
            self._owners.append(again.secret_digest)
        if again is not None and self._rechecks.on:
            # The VM may have lost or failed to use its activation: the run checks it first.
            wanted = self._rechecks.request()
            await workflow.wait_condition(lambda: self._rechecks.checked >= wanted or not self._rechecks.on)
        await workflow.wait_condition(lambda: self._answer is not None or self._failure is not None)
        if self._answer is not None:
            return self._answer
        assert self._failure is not None
        raise self._failure

    @register.validator
    def _registration(self, again: RegisterRequest | None = None) -> None:
        if again is None and self._answered:
            # An API of before RegisterRequest: one registration per run, as it expects.
            raise ApplicationError("this enrollment already has its registration", type=ErrorType.ENROLLMENT_RUNNING.value)

    @workflow.query(name=QueryName.STATUS)
    def status(self, query: EnrollmentStatusQuery) -> EnrollmentStatus:
        """The state; the answer (with its activation code) only for the enrollment id's holder."""
        if not any(_same(query.secret_digest, digest) for digest in self._owners):
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
        if inp.secret_digest not in self._owners:
            self._owners.insert(0, inp.secret_digest)
        self._fewer = workflow.patched(FEWER_EVENTS)
        started = (sa.PROVIDER.value_set(inp.provider.value), sa.INSTANCE_KEY.value_set(inp.instance_key))
        if not self._fewer:
            upsert(*started)
            started = ()
        if self._fewer and _started_verifying(inp):
            self._state = EnrollmentState.VERIFYING  # the start set them all: no upsert
        else:
            self._set_state(EnrollmentState.VERIFYING, *started)
        try:
            return await self._enroll(inp)
        except (ActivityError, ChildWorkflowError, ApplicationError) as err:
            failure = err if isinstance(err, ApplicationError) and err.type else application_error(err)
            self._failure = failure
            refused = failure.type in REFUSALS
            self._set_state(EnrollmentState.REFUSED if refused else EnrollmentState.FAILED)
            workflow.logger.info("enrollment ended", extra={"error_type": failure.type})
            # Let a waiting update read the failure before the run closes.
            await workflow.wait_condition(workflow.all_handlers_finished)
            if refused and workflow.patched(REFUSAL_COMPLETES):
                return EnrollResult(refused=failure.type, reason=failure.message)
            raise failure from None

    async def _enroll(self, inp: EnrollInput) -> EnrollResult:
        steps = EnrollSteps(inp, Calls(inp.queue_prefix))
        identity, link = await self._verify_identity(steps, inp)
        staged: list[SearchAttributePair] | None = [] if self._fewer else None
        metadata, cloud_account, link = await self._read_vm(steps, inp, identity, link, staged)
        group = setup.patch_group(steps, metadata, link, staged)
        if staged is not None:
            account, config = await setup.shared(steps, link, cloud_account, staged, self._set_state)
        else:
            upsert(sa.PATCH_GROUP.value_set(group.value))
            account = await self._ensure_systems_account(steps, inp, link, cloud_account)
            config = await self._ensure_ssm_configuration(steps, account, setup.account_ref(account))
        ref = setup.account_ref(account)
        if link.remote_access:
            await steps.on_aws(ActivityName.ENABLE_REMOTE_ACCESS, RemoteAccessInput(account=ref), RemoteAccessResult)
        tags = _instance_tags(inp, group, cloud_account, link)
        activation_id: str | None = None
        if inp.provider is Provider.AWS:
            self._answer = await steps.tag_ec2(identity, metadata, account, ref, group, tags)
            self._set_state(EnrollmentState.AWAITING_AGENT)
            managed = await steps.await_online(steps.by_instance_id(ref, identity.instance_id))
        else:
            self._answer = await steps.activate(ref, config, account, group, tags, at_once=self._fewer)
            self._set_state(EnrollmentState.AWAITING_AGENT)
            if workflow.patched(REISSUE_ACTIVATION):
                managed = await self._await_agent(steps, ref, config.service_role, tags)
            else:
                managed = await steps.register_agent(ref, self._answer, tags)
            activation_id = self._answer.activation.id if self._answer.activation else None
        if inp.provider is Provider.VMWARE:
            await steps.replace_vcenter_token(identity, link)
        self._set_state(EnrollmentState.ENROLLED)
        assert self._verified_at is not None
        await steps.record_evidence(identity, self._verified_at, cloud_account, link, account, group, managed)
        await workflow.wait_condition(workflow.all_handlers_finished)  # re-registrations get their answer
        return EnrollResult(
            identity=identity,
            customer=link.customer,
            systems_account=account.account_id,
            patch_group=group,
            managed_instance_id=managed.instance_id,
            activation_id=activation_id,
        )

    # --- steps -----------------------------------------------------------------------------

    async def _verify_identity(self, steps: EnrollSteps, inp: EnrollInput) -> tuple[VerifiedIdentity, TenantLink | None]:
        """The identity's signature on the provider's worker; its cloud account must be linked.
        On the short path the claimed account's link is read meanwhile: it counts only once the
        signed identity names that same account (else the run is refused below)."""
        claimed_account, _, claimed_instance = inp.instance_key.partition("/")
        link: TenantLink | None = None
        verify = VerifyIdentityInput(provider=inp.provider, identity=inp.identity, nonce=inp.nonce)
        if inp.provider is Provider.VMWARE:
            # The vCenter's token keys live in its link: look them up by the claimed vCenter, and
            # require the verified token to name that same vCenter below.
            link = await steps.link(claimed_account)
            verify.vcenter_public_keys = link.vcenter_public_keys
            verify.vcenter_scope = link.vcenter_scope  # a shared vCenter: only VMs in its folder/pool
        beside = asyncio.ensure_future(steps.link(claimed_account)) if self._fewer and link is None else None
        try:
            identity = await self._verified(steps, inp, verify, link)
        except BaseException:
            setup.discard(beside)
            raise
        if beside is not None:
            link = await beside
        elif link is None and identity.cloud_account:
            # The tenant comes from the signed identity: an unlinked account is refused before
            # fleetpatch calls its cloud's API at all.
            link = await steps.link(identity.cloud_account)
        return identity, link

    async def _verified(
        self, steps: EnrollSteps, inp: EnrollInput, verify: VerifyIdentityInput, link: TenantLink | None
    ) -> VerifiedIdentity:
        """The verified identity, refused unless it names the claimed instance (and, for a vCenter
        token, the customer its vCenter is linked to)."""
        claimed_account, _, claimed_instance = inp.instance_key.partition("/")
        identity = await steps.on_provider(ActivityName.VERIFY_IDENTITY, verify, VerifiedIdentity)
        self._verified_at = workflow.now()
        if identity.instance_id != claimed_instance or (identity.cloud_account and identity.cloud_account != claimed_account):
            raise refuse(
                ErrorType.IDENTITY_INSTANCE_MISMATCH,
                f"the signed identity names {identity.cloud_account}/{identity.instance_id}, not {inp.instance_key}",
            )
        if link is not None and identity.evidence.get("customer", link.customer) != link.customer:
            # A vCenter token signs its customer: it must be the customer this vCenter is linked to.
            raise refuse(
                ErrorType.TENANT_NOT_LINKED,
                f"vCenter {claimed_account} is linked to {link.customer!r}, the token names {identity.evidence['customer']!r}",
            )
        return identity

    @staticmethod
    async def _read_vm(
        steps: EnrollSteps, inp: EnrollInput, identity: VerifiedIdentity, link: TenantLink | None,
        staged: list[SearchAttributePair] | None = None,
    ) -> tuple[VmMetadata, str, TenantLink]:
        """The VM as its cloud's API describes it (labels, and where it really is). Its search
        attributes go to ``staged`` when given (set later with others), else are set now."""
        read = VmMetadataInput(
            identity=identity,
            resource_id=inp.resource_id,
            role_arn=link.role_arn if link else None,
            external_id=link.external_id if link else None,
        )
        metadata = await steps.on_provider(ActivityName.READ_VM_METADATA, read, VmMetadata)
        claimed_account = inp.instance_key.partition("/")[0]
        # Old Azure documents carry no subscription: ARM placed the attested vmId in it instead.
        cloud_account = identity.cloud_account or metadata.cloud_account
        if cloud_account != claimed_account or metadata.instance_id != identity.instance_id:
            raise refuse(
                ErrorType.IDENTITY_INSTANCE_MISMATCH,
                f"the cloud's API places this VM in {cloud_account}, not {claimed_account}",
            )
        if link is None:
            link = await steps.link(cloud_account)
        where = [sa.CLOUD_ACCOUNT.value_set(cloud_account), sa.CUSTOMER.value_set(link.customer)]
        if staged is None:
            upsert(*where)
        else:
            staged.extend(where)
        return metadata, cloud_account, link

    async def _ensure_systems_account(
        self, steps: EnrollSteps, inp: EnrollInput, link: TenantLink, cloud_account: str
    ) -> SystemsAccount:
        """The customer cloud account's systems account: a child shared by concurrent enrollments."""
        self._set_state(EnrollmentState.VENDING)
        account = await setup.systems_account_child(steps, link, cloud_account)
        upsert(sa.SYSTEMS_ACCOUNT.value_set(account.account_id))
        return account

    async def _ensure_ssm_configuration(
        self, steps: EnrollSteps, account: SystemsAccount, ref: AccountRef
    ) -> SsmConfigurationResult:
        """The account's SSM configuration, applied once per version (a shared child)."""
        self._set_state(EnrollmentState.CONFIGURING)
        return await setup.configuration_child(steps, account)

    async def _await_agent(self, steps: EnrollSteps, ref: AccountRef, service_role: str, tags: dict[str, str]) -> ManagedInstance:
        """The agent registers with the answered activation and comes online. A VM that registers
        again meanwhile gets the same activation while it is usable, else a fresh one (the old one
        deleted, whatever used it deregistered), with a fresh wait."""
        self._rechecks.on = True
        deadline = workflow.now() + timedelta(seconds=steps.inp.policy.agent_online_timeout_seconds)
        try:
            while True:
                if self._rechecks.pending():
                    if await self._recheck(steps, ref, service_role, tags):
                        deadline = workflow.now() + timedelta(seconds=steps.inp.policy.agent_online_timeout_seconds)
                    continue
                assert self._answer is not None and self._answer.activation is not None
                activation_id = self._answer.activation.id
                query = ManagedInstanceQuery(account=ref, activation_id=activation_id)
                waiting = asyncio.ensure_future(steps.await_online(query, max(deadline - workflow.now(), options.MIN_WAIT)))
                await workflow.wait_condition(lambda: waiting.done() or self._rechecks.pending())
                if not waiting.done():
                    waiting.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ActivityError):
                        await waiting
                    continue
                try:
                    managed = waiting.result()
                except ApplicationError:
                    await steps.on_aws(ActivityName.DELETE_ACTIVATION, DeleteActivationInput(account=ref, activation_id=activation_id), None)
                    raise
                await steps.finish_agent(ref, activation_id, managed, tags)
                return managed
        finally:
            self._rechecks.on = False

    async def _recheck(self, steps: EnrollSteps, ref: AccountRef, service_role: str, tags: dict[str, str]) -> bool:
        """Answer the pending re-registrations: True when their activation had to be replaced."""
        assert self._answer is not None and self._answer.activation is not None
        wanted = self._rechecks.requested
        check = await steps.check_activation(ref, self._answer.activation.id)
        replaced = not check.usable and self._rechecks.reissued < MAX_REISSUES
        if replaced:
            self._rechecks.reissued += 1
            self._answer = await steps.reissue(ref, self._answer, service_role, tags, self._rechecks.reissued)
            workflow.logger.info("activation reissued", extra={"expired": check.expired, "used": check.used, "exists": check.exists})
        self._rechecks.checked = wanted
        return replaced

    # --- plumbing --------------------------------------------------------------------------

    def _set_state(self, state: EnrollmentState, *pairs: SearchAttributePair) -> None:
        """The state, with any other search attributes due now (one upsert)."""
        self._state = state
        upsert(sa.ENROLLMENT_STATE.value_set(state.value), *pairs)


def _started_verifying(inp: EnrollInput) -> bool:
    """Whether the start already carried this VM's provider, instance key and the state
    ``verifying`` (the API's starts do): the run's first upsert would change nothing. Read from
    the start event, so a replay decides the same."""
    have = workflow.info().typed_search_attributes
    return (
        have.get(sa.PROVIDER) == inp.provider.value
        and have.get(sa.INSTANCE_KEY) == inp.instance_key
        and have.get(sa.ENROLLMENT_STATE) == EnrollmentState.VERIFYING.value
    )


def _instance_tags(inp: EnrollInput, group: PatchGroup, cloud_account: str, link: TenantLink) -> dict[str, str]:
    """The tags the managed instance carries (``Patch Group`` picks its baselines and windows)."""
    return {
        TAG_PATCH_GROUP: group.value,
        TAG_PROVIDER: inp.provider.value,
        TAG_CLOUD_ACCOUNT: cloud_account,
        TAG_CUSTOMER: link.customer,
        TAG_INSTANCE_KEY: inp.instance_key,
        TAG_ENROLLMENT_ID: workflow.info().run_id,
    }


#: enrollment ids one run keeps for polling (the newest, and the first registration's)
_MAX_OWNERS = 50


def _same(a: str, b: str) -> bool:
    """Constant-time comparison of two digests (deterministic; safe in a query)."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a.encode(), b.encode(), strict=True):
        diff |= x ^ y
    return diff == 0 and bool(a)

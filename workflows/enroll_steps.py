"""The steps of EnrollVm that talk to the workers: tenant links, managed instances, the
activation and the agent, EC2 tagging. ``workflows.enroll`` sequences them; each step is one
screen and calls its activities through ``workflows.calls`` with a preset of ``workflows.options``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.enrollment import (
        SSM_CONFIGURATION_VERSION,
        TAG_ENROLLMENT_ID,
        AccountRef,
        Activation,
        ActivationCheck,
        ActivationRequest,
        DeleteActivationInput,
        DeregisterInput,
        Ec2TagInput,
        EnrollInput,
        GetLinkResult,
        LinkKey,
        ManagedInstance,
        ManagedInstanceQuery,
        ManagedInstanceResult,
        RegistrationAnswer,
        SsmConfigurationResult,
        SystemsAccount,
        TagManagedInstanceInput,
        TenantLink,
    )
    from contracts.enrollment_setup import KnownSetup, KnownSetupInput, NewInstanceActivation
    from contracts.errors import IDENTITY_REFUSALS, ErrorType
    from contracts.evidence import EnrollmentEvidence, RecordEvidenceResult, identity_digest, signing_key
    from contracts.identity import VerifiedIdentity
    from contracts.models import ActivityName, VmMetadata
    from contracts.providers import PROVIDER_ROLE, PatchGroup, WorkerRole
    from contracts.vcenter_tokens import ReplaceTokenInput
    from workflows import options
    from workflows.calls import Calls, timed_out
    from workflows.options import ActivityPreset

T = TypeVar("T")

#: Patch marker: enrollments from before it never replaced their vCenter token.
TOKEN_ENROLLS_ONCE = "vcenter-token-enrolls-once"
#: Patch marker: enrollments from before it never recorded their identity evidence.
RECORDS_EVIDENCE = "enrollment-records-evidence"

#: Refusals: the VM (or its tenant) may not enroll. Everything else that fails is a failure.
REFUSALS = frozenset({t.value for t in IDENTITY_REFUSALS} | {
    ErrorType.TENANT_NOT_LINKED.value,
    ErrorType.PATCHING_NOT_ENABLED.value,
    ErrorType.PATCH_GROUP_INVALID.value,
    ErrorType.ALREADY_ENROLLED.value,
    ErrorType.INSTANCE_NOT_FOUND.value,
    ErrorType.INSTANCE_NOT_RUNNING.value,
})


#: Patch marker: a VM that registers again while its agent is awaited gets a fresh activation when
#: the answered one is used, expired or deleted (runs from before it answer the old one again).
REISSUE_ACTIVATION = "reissue-used-or-gone-activation"

#: At most this many fresh activations per enrollment (then re-registrations get the current one).
MAX_REISSUES = 3


@dataclass
class Rechecks:
    """Re-registrations that arrived while the agent is awaited: each asks the run to check the
    activation it answers before answering it again."""

    on: bool = False
    requested: int = 0
    checked: int = 0
    reissued: int = 0

    def request(self) -> int:
        self.requested += 1
        return self.requested

    def pending(self) -> bool:
        return self.on and self.requested > self.checked


def refuse(kind: ErrorType, reason: str) -> ApplicationError:
    return ApplicationError(reason, type=kind.value, non_retryable=True)


@dataclass(frozen=True)
class EnrollSteps:
    inp: EnrollInput
    calls: Calls

    # --- calls -------------------------------------------------------------------------------

    async def on_provider(self, name: str, arg: Any, result_type: type[T] | None) -> T:
        """An identity or metadata call on the VM's own cloud's worker."""
        return await self.calls.activity(PROVIDER_ROLE[self.inp.provider], name, arg, result_type, options.CLOUD_READ)

    async def on_aws(self, name: str, arg: Any, result_type: type[T] | None, preset: ActivityPreset = options.AWS_CONTROL) -> T:
        """An AWS control-plane call on the aws worker."""
        return await self.calls.activity(WorkerRole.AWS, name, arg, result_type, preset)

    # --- the tenant and the patch group ------------------------------------------------------

    async def link(self, cloud_account: str) -> TenantLink:
        """The tenant link of a cloud account; an unlinked account is refused."""
        key = LinkKey(provider=self.inp.provider, cloud_account=cloud_account)
        result = await self.on_aws(ActivityName.GET_LINK, key, GetLinkResult)
        if result.link is None:
            raise refuse(
                ErrorType.TENANT_NOT_LINKED, f"{self.inp.provider.value} account {cloud_account!r} is not linked to a customer"
            )
        return result.link

    def patch_group(self, metadata: VmMetadata, link: TenantLink) -> PatchGroup:
        """The patching label must be ``true``; the group label (else the link's default) picks the ring."""
        policy = self.inp.policy
        enabled = metadata.labels.get(policy.patching_label, "")
        if enabled.strip().lower() != "true":
            raise refuse(
                ErrorType.PATCHING_NOT_ENABLED, f"label {policy.patching_label!r} is {enabled or 'absent'!r}, not 'true'"
            )
        wanted = metadata.labels.get(policy.patch_group_label, "").strip().lower()
        if not wanted:
            return PatchGroup(link.default_patch_group)
        try:
            return PatchGroup(wanted)
        except ValueError:
            allowed = ", ".join(g.value for g in PatchGroup)
            raise refuse(
                ErrorType.PATCH_GROUP_INVALID, f"label {policy.patch_group_label!r} is {wanted!r}; use one of {allowed}"
            ) from None

    # --- the shared children's results, when they completed ---------------------------------------

    async def known_setup(self, cloud_account: str) -> KnownSetup:
        """The systems account and its SSM configuration at the current version where their shared
        workflows completed (a local activity: one marker). Nothing known, should Temporal not
        answer it: the shared children's path then starts or awaits them as it always did."""
        look = KnownSetupInput(
            provider=self.inp.provider, cloud_account=cloud_account, configuration_version=SSM_CONFIGURATION_VERSION
        )
        try:
            return await self.calls.local(ActivityName.READ_KNOWN_SETUP, look, KnownSetup, options.KNOWN_SETUP)
        except ActivityError as err:
            workflow.logger.warning(
                "shared results not read; taking the shared children's path", extra={"reason": str(err.cause or err)}
            )
            return KnownSetup()

    # --- managed instances -------------------------------------------------------------------

    @staticmethod
    def by_instance_id(ref: AccountRef, instance_id: str) -> ManagedInstanceQuery:
        return ManagedInstanceQuery(account=ref, instance_id=instance_id)

    async def find_managed(self, query: ManagedInstanceQuery) -> ManagedInstance | None:
        found = await self.on_aws(ActivityName.FIND_MANAGED_INSTANCE, query, ManagedInstanceResult)
        return found.instance

    async def await_online(self, query: ManagedInstanceQuery, timeout: timedelta | None = None) -> ManagedInstance:
        """Wait (polling, less often the longer it is away) for the agent to report; refuse when it
        does not in time."""
        timeout = timeout or timedelta(seconds=self.inp.policy.agent_online_timeout_seconds)
        try:
            found = await self.on_aws(
                ActivityName.AWAIT_MANAGED_INSTANCE, query, ManagedInstanceResult, options.poll_agent(timeout)
            )
        except ActivityError as err:
            # The retry budget ran out: the last cause is either the timeout or the last "not yet".
            if timed_out(err) or getattr(err.cause, "type", None) == ErrorType.AGENT_NOT_READY.value:
                raise refuse(
                    ErrorType.AGENT_REGISTRATION_TIMEOUT,
                    f"the SSM agent did not come online within {timeout}; its activation was deleted",
                ) from None
            raise
        assert found.instance is not None
        return found.instance

    async def confirm_tags(self, ref: AccountRef, managed: ManagedInstance, tags: dict[str, str]) -> None:
        """The managed instance holds its tags (added when registration dropped some)."""
        missing = {k: v for k, v in tags.items() if managed.tags.get(k) != v}
        if not missing:
            return
        tag = TagManagedInstanceInput(account=ref, instance_id=managed.instance_id, tags=missing)
        await self.on_aws(ActivityName.TAG_MANAGED_INSTANCE, tag, None)
        again = await self.find_managed(self.by_instance_id(ref, managed.instance_id))
        if again is None or any(again.tags.get(k) != v for k, v in tags.items()):
            raise refuse(ErrorType.AGENT_TAGS_MISMATCH, f"{managed.instance_id} does not hold its tags {sorted(missing)}")

    # --- hybrid: the activation and the agent ------------------------------------------------

    async def activate(
        self, ref: AccountRef, config: SsmConfigurationResult, account: SystemsAccount, group: PatchGroup, tags: dict[str, str],
        at_once: bool = False,
    ) -> RegistrationAnswer:
        """Trust on first use, then one activation for this VM: the API call's answer. ``at_once``:
        both in one activity on the aws worker (``FEWER_EVENTS``), else a look-up, then the activation."""
        inp = self.inp
        if at_once:
            request = self._activation_request(ref, config.service_role, tags)
            once = NewInstanceActivation(instance_key=inp.instance_key, activation=request)
            activation = await self.on_aws(ActivityName.ACTIVATE_NEW_INSTANCE, once, Activation)
        else:
            existing = await self.find_managed(ManagedInstanceQuery(account=ref, instance_key=inp.instance_key))
            if existing is not None:
                raise refuse(
                    ErrorType.ALREADY_ENROLLED,
                    f"{inp.instance_key} is already managed instance {existing.instance_id}; "
                    "an operator must allow re-enrollment",
                )
            activation = await self.new_activation(ref, config.service_role, tags)
        return RegistrationAnswer(
            enrollment_id="", systems_account=account.account_id, patch_group=group.value, activation=activation
        )

    async def new_activation(self, ref: AccountRef, service_role: str, tags: dict[str, str], serial: int = 0) -> Activation:
        """One activation for this VM (RegistrationLimit 1); ``serial`` > 0 for a reissued one."""
        request = self._activation_request(ref, service_role, tags, serial)
        return await self.on_aws(ActivityName.CREATE_ACTIVATION, request, Activation)

    def _activation_request(self, ref: AccountRef, service_role: str, tags: dict[str, str], serial: int = 0) -> ActivationRequest:
        info = workflow.info()
        key = f"{info.workflow_id}/{info.run_id}" + (f"/reissue-{serial}" if serial else "")
        return ActivationRequest(
            account=ref,
            service_role=service_role,
            default_instance_name=self.inp.hostname,
            idempotency_key=key,
            tags=tags,
            expiry_seconds=self.inp.policy.activation_expiry_seconds,
        )

    async def reissue(
        self, ref: AccountRef, answer: RegistrationAnswer, service_role: str, tags: dict[str, str], serial: int
    ) -> RegistrationAnswer:
        """The answer, with a fresh activation in place of a used, expired or deleted one. Whatever
        registered with the old one is deregistered (one managed instance per VM); it is deleted."""
        assert answer.activation is not None
        old = answer.activation.id
        used_by = await self.find_managed(ManagedInstanceQuery(account=ref, activation_id=old))
        if used_by is not None:
            deregister = DeregisterInput(account=ref, instance_id=used_by.instance_id)
            await self.on_aws(ActivityName.DEREGISTER_MANAGED_INSTANCE, deregister, None)
        await self.on_aws(ActivityName.DELETE_ACTIVATION, DeleteActivationInput(account=ref, activation_id=old), None)
        activation = await self.new_activation(ref, service_role, tags, serial)
        return replace(answer, activation=activation)

    async def check_activation(self, ref: AccountRef, activation_id: str) -> ActivationCheck:
        check = DeleteActivationInput(account=ref, activation_id=activation_id)
        return await self.on_aws(ActivityName.CHECK_ACTIVATION, check, ActivationCheck)

    async def finish_agent(self, ref: AccountRef, activation_id: str, managed: ManagedInstance, tags: dict[str, str]) -> None:
        """The agent is online: its tags confirmed, its used activation deleted."""
        await self.confirm_tags(ref, managed, tags)
        await self.on_aws(ActivityName.DELETE_ACTIVATION, DeleteActivationInput(account=ref, activation_id=activation_id), None)

    async def register_agent(self, ref: AccountRef, answer: RegistrationAnswer, tags: dict[str, str]) -> ManagedInstance:
        """The agent registers with the activation and comes online with its tags; the used (or
        expired) activation is deleted either way."""
        assert answer.activation is not None
        delete = DeleteActivationInput(account=ref, activation_id=answer.activation.id)
        try:
            managed = await self.await_online(ManagedInstanceQuery(account=ref, activation_id=answer.activation.id))
        except ApplicationError:
            await self.on_aws(ActivityName.DELETE_ACTIVATION, delete, None)
            raise
        await self.confirm_tags(ref, managed, tags)
        # Its one registration is used: the activation has nothing left to give.
        await self.on_aws(ActivityName.DELETE_ACTIVATION, delete, None)
        return managed

    # --- vCenter: a token enrolls once -----------------------------------------------------------

    async def replace_vcenter_token(self, identity: VerifiedIdentity, link: TenantLink) -> None:
        """The token this enrollment used is superseded by a fresh one, so a copy of it enrolls
        nothing (its replay is refused: not the VM's current token). Best effort: an enrolled VM
        stays enrolled, and trust on first use still refuses a replay, if the write fails."""
        if not workflow.patched(TOKEN_ENROLLS_ONCE):
            return  # a run that started before this step existed
        replace = ReplaceTokenInput(vcenter_id=identity.cloud_account, instance_uuid=identity.instance_id, customer=link.customer)
        try:
            await self.on_provider(ActivityName.REPLACE_VCENTER_TOKEN, replace, None)
        except ActivityError as err:
            workflow.logger.warning("used vCenter token not replaced", extra={"reason": str(err.cause or err)})

    # --- the audit chain: how the VM proved itself ----------------------------------------------

    async def record_evidence(
        self, identity: VerifiedIdentity, verified_at: datetime, cloud_account: str, link: TenantLink,
        account: SystemsAccount, group: PatchGroup, managed: ManagedInstance,
    ) -> None:
        """The estate store keeps the key that signed, a digest of the identity (never the identity:
        it is a credential), when it was verified and this run. Best effort, like a window's
        results: the VM is enrolled whether or not the store could be written."""
        if not workflow.patched(RECORDS_EVIDENCE):
            return  # a run that started before this step existed
        info = workflow.info()
        key_kind, key_id = signing_key(identity.evidence)
        record = EnrollmentEvidence(
            workflow_id=info.workflow_id, run_id=info.run_id, provider=self.inp.provider.value,
            instance_key=self.inp.instance_key, identity_sha256=identity_digest(self.inp.identity),
            verified_at=verified_at, key_kind=key_kind, key_id=key_id, cloud_account=cloud_account,
            customer=link.customer, systems_account=account.account_id, managed_instance_id=managed.instance_id,
            patch_group=group.value,
        )
        try:
            await self.on_aws(ActivityName.RECORD_ENROLLMENT_EVIDENCE, record, RecordEvidenceResult, options.ESTATE_WRITE)
        except ActivityError as err:
            workflow.logger.warning("identity evidence not recorded in the estate store", extra={"reason": str(err.cause or err)})

    # --- EC2: tag the instance, its own agent reports ------------------------------------------

    async def tag_ec2(
        self, identity: VerifiedIdentity, metadata: VmMetadata, account: SystemsAccount, ref: AccountRef,
        group: PatchGroup, tags: dict[str, str],
    ) -> RegistrationAnswer:
        """Trust on first use, then the instance's tags in the customer's own account."""
        inp = self.inp
        # Enrolled means tagged by an earlier enrollment AND reporting to SSM; a tag left by an
        # enrollment whose agent never reported does not block a new attempt.
        earlier = metadata.labels.get(TAG_ENROLLMENT_ID)
        if earlier and await self.find_managed(self.by_instance_id(ref, identity.instance_id)):
            raise refuse(
                ErrorType.ALREADY_ENROLLED,
                f"{inp.instance_key} already carries enrollment {earlier}; an operator must allow re-enrollment",
            )
        tag = Ec2TagInput(
            account_id=identity.cloud_account,
            region=identity.region or ref.region,
            instance_id=identity.instance_id,
            role_arn=account.role_arn,
            external_id=account.external_id,
            tags=tags,
        )
        await self.on_provider(ActivityName.TAG_EC2_INSTANCE, tag, None)
        return RegistrationAnswer(
            enrollment_id="",
            systems_account=account.account_id,
            patch_group=group.value,
            managed_instance_id=identity.instance_id,
        )

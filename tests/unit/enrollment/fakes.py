"""Stand-in activities for EnrollVm workflow tests: same names, scripted behaviour, call records."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio import activity

from contracts.enrollment import (
    Activation,
    ActivationCheck,
    ActivationRequest,
    CreateAccountRequest,
    CreateAccountStatus,
    CreateAccountSubmitted,
    DeleteActivationInput,
    DeregisterInput,
    Ec2TagInput,
    FoundAccount,
    GetLinkResult,
    LinkKey,
    ManagedInstance,
    ManagedInstanceQuery,
    ManagedInstanceResult,
    SsmConfigurationInput,
    SsmConfigurationResult,
    TagAccountInput,
    TagManagedInstanceInput,
    TenantLink,
    AccountLookup,
)
from contracts.enrollment_setup import NewInstanceActivation
from contracts.errors import ErrorType, FleetpatchError, IdentityRefused, NotReady
from contracts.evidence import EnrollmentEvidence, RecordEvidenceResult
from contracts.identity import VerifiedIdentity
from contracts.models import ActivityName, VerifyIdentityInput, VmMetadata, VmMetadataInput
from contracts.providers import Provider


@dataclass
class Vm:
    provider: Provider
    cloud_account: str
    instance_id: str
    labels: dict[str, str] = field(default_factory=lambda: {"rackspace-addon-patching": "true"})
    refuse_with: ErrorType | None = None
    #: What the verifier reports about the key that signed (VerifiedIdentity.evidence).
    evidence: dict[str, str] = field(default_factory=lambda: {"kid": "kid-fake", "alg": "RS256"})


@dataclass
class FakeClouds:
    """One object plays every cloud and AWS: tests script it and read what was called."""

    vms: dict[str, Vm] = field(default_factory=dict)  # by token
    links: dict[tuple[str, str], TenantLink] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # email -> account id
    create_delay_polls: int = 2
    #: Account ids differ per fake: shared workflows are keyed by account id across tests.
    account_base: int = field(default_factory=lambda: random.randrange(10**11, 9 * 10**11))
    create_failure: str | None = None
    agent_online_after_polls: int | None = 1  # None: never
    agent_tags_land: bool = True
    managed: dict[str, ManagedInstance] = field(default_factory=dict)  # instance key -> managed
    calls: Counter = field(default_factory=Counter)
    activations: dict[str, ActivationRequest] = field(default_factory=dict)
    deleted_activations: list[str] = field(default_factory=list)
    #: activations the "VM" made unusable: "gone" (deleted behind fleetpatch's back) or "used"
    spoiled: dict[str, str] = field(default_factory=dict)
    #: only reissued activations bring their agent online (the first one was spoiled)
    online_only_reissued: bool = False
    deregistered: list[str] = field(default_factory=list)
    evidence: list[EnrollmentEvidence] = field(default_factory=list)  # what EnrollVm recorded, in order
    #: when each agent poll (an attempt of ``await_managed_instance``) started, in order
    poll_times: list[datetime] = field(default_factory=list)
    _polls: Counter = field(default_factory=Counter)

    def link(self, provider: Provider, cloud_account: str, customer: str = "acme", **kw) -> None:
        self.links[(provider.value, cloud_account)] = TenantLink(
            provider=provider, cloud_account=cloud_account, customer=customer, **kw
        )

    # --- provider queue --------------------------------------------------------------------

    @activity.defn(name=ActivityName.VERIFY_IDENTITY)
    async def verify_identity(self, inp: VerifyIdentityInput) -> VerifiedIdentity:
        self.calls["verify"] += 1
        vm = self.vms.get(inp.identity.get("token", ""))
        if vm is None:
            raise IdentityRefused(ErrorType.IDENTITY_SIGNATURE_INVALID, "signature does not verify")
        if vm.refuse_with:
            raise IdentityRefused(vm.refuse_with, "refused")
        return VerifiedIdentity(
            provider=vm.provider, cloud_account=vm.cloud_account, instance_id=vm.instance_id,
            issued_at=datetime(2026, 11, 26, tzinfo=UTC), instance_name=f"vm-{vm.instance_id}", region="us-east1-b",
            evidence=dict(vm.evidence),
        )

    @activity.defn(name=ActivityName.READ_VM_METADATA)
    async def read_vm_metadata(self, inp: VmMetadataInput) -> VmMetadata:
        self.calls["metadata"] += 1
        vm = next(v for v in self.vms.values() if v.instance_id == inp.identity.instance_id)
        return VmMetadata(
            provider=vm.provider, cloud_account=vm.cloud_account, instance_id=vm.instance_id,
            name=f"vm-{vm.instance_id}", labels=dict(vm.labels), state="RUNNING",
        )

    @activity.defn(name=ActivityName.TAG_EC2_INSTANCE)
    async def tag_ec2_instance(self, inp: Ec2TagInput) -> None:
        self.calls["tag_ec2"] += 1
        vm = next(v for v in self.vms.values() if v.instance_id == inp.instance_id)
        vm.labels.update(inp.tags)

    # --- aws queue ---------------------------------------------------------------------------

    @activity.defn(name=ActivityName.GET_LINK)
    async def get_link(self, key: LinkKey) -> GetLinkResult:
        self.calls["get_link"] += 1
        return GetLinkResult(link=self.links.get((key.provider.value, key.cloud_account)))

    @activity.defn(name=ActivityName.FIND_SYSTEMS_ACCOUNT)
    async def find_systems_account(self, lookup: AccountLookup) -> FoundAccount:
        self.calls["find_account"] += 1
        email = f"fp+{lookup.provider.value}-{lookup.cloud_account}@x.example"
        account_id = self.accounts.get(email)
        return FoundAccount(
            email=email, name=f"fp-{lookup.cloud_account}", account_id=account_id,
            role_arn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole" if account_id else None,
        )

    @activity.defn(name=ActivityName.SUBMIT_CREATE_ACCOUNT)
    async def submit_create_account(self, request: CreateAccountRequest) -> CreateAccountSubmitted:
        self.calls["create_account"] += 1
        return CreateAccountSubmitted(request_id=f"car-{request.email}")

    @activity.defn(name=ActivityName.POLL_CREATE_ACCOUNT)
    async def poll_create_account(self, submitted: CreateAccountSubmitted) -> CreateAccountStatus:
        self._polls[submitted.request_id] += 1
        if self._polls[submitted.request_id] <= self.create_delay_polls:
            raise NotReady(ErrorType.ACCOUNT_NOT_READY, "in progress")
        email = submitted.request_id.removeprefix("car-")
        if self.create_failure:
            if self.create_failure == "EMAIL_ALREADY_EXISTS":
                self.accounts[email] = f"{self.account_base + 999}"
            return CreateAccountStatus(state="FAILED", failure_reason=self.create_failure)
        account_id = f"{self.account_base + len(self.accounts)}"
        self.accounts[email] = account_id
        return CreateAccountStatus(
            state="SUCCEEDED", account_id=account_id, role_arn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole"
        )

    @activity.defn(name=ActivityName.TAG_SYSTEMS_ACCOUNT)
    async def tag_systems_account(self, inp: TagAccountInput) -> None:
        self.calls["tag_account"] += 1

    @activity.defn(name=ActivityName.APPLY_SSM_CONFIGURATION)
    async def apply_ssm_configuration(self, inp: SsmConfigurationInput) -> SsmConfigurationResult:
        self.calls["ssm_config"] += 1
        return SsmConfigurationResult(
            version=inp.version, service_role="fleetpatch-ssm-managed-instance",
            baselines={}, inventory_association_id="assoc-1", changed=True,
        )

    @activity.defn(name=ActivityName.CREATE_ACTIVATION)
    async def create_activation(self, request: ActivationRequest) -> Activation:
        self.calls["create_activation"] += 1
        activation_id = f"act-{len(self.activations) + 1}"
        self.activations[activation_id] = request
        return Activation(id=activation_id, code="secret-code", region="us-east-1")

    @activity.defn(name=ActivityName.ACTIVATE_NEW_INSTANCE)
    async def activate_new_instance(self, request: NewInstanceActivation) -> Activation:
        self.calls["activate_new_instance"] += 1
        existing = self.managed.get(request.instance_key)
        if existing is not None:
            raise FleetpatchError(ErrorType.ALREADY_ENROLLED, f"{request.instance_key} is already {existing.instance_id}")
        return await self.create_activation(request.activation)

    @activity.defn(name=ActivityName.DELETE_ACTIVATION)
    async def delete_activation(self, inp: DeleteActivationInput) -> None:
        self.deleted_activations.append(inp.activation_id)

    @activity.defn(name=ActivityName.CHECK_ACTIVATION)
    async def check_activation(self, inp: DeleteActivationInput) -> ActivationCheck:
        self.calls["check_activation"] += 1
        spoiled = self.spoiled.get(inp.activation_id)
        if spoiled == "gone" or inp.activation_id in self.deleted_activations:
            return ActivationCheck(exists=False)
        return ActivationCheck(exists=True, used=spoiled == "used")

    @activity.defn(name=ActivityName.DEREGISTER_MANAGED_INSTANCE)
    async def deregister_managed_instance(self, inp: DeregisterInput) -> None:
        self.deregistered.append(inp.instance_id)
        for key, managed in list(self.managed.items()):
            if managed.instance_id == inp.instance_id:
                del self.managed[key]

    def _managed_for(self, query: ManagedInstanceQuery) -> ManagedInstance | None:
        if query.instance_key:
            return self.managed.get(query.instance_key)
        for managed in self.managed.values():
            if query.activation_id and managed.activation_id == query.activation_id:
                return managed
            if query.instance_id and managed.instance_id == query.instance_id:
                return managed
        return None

    @activity.defn(name=ActivityName.FIND_MANAGED_INSTANCE)
    async def find_managed_instance(self, query: ManagedInstanceQuery) -> ManagedInstanceResult:
        return ManagedInstanceResult(instance=self._managed_for(query))

    @activity.defn(name=ActivityName.AWAIT_MANAGED_INSTANCE)
    async def await_managed_instance(self, query: ManagedInstanceQuery) -> ManagedInstanceResult:
        key = query.activation_id or query.instance_id or ""
        self._polls[key] += 1
        self.poll_times.append(activity.info().started_time)
        reissued = query.activation_id and "/reissue-" in self.activations[query.activation_id].idempotency_key
        if self.agent_online_after_polls is None or self._polls[key] <= self.agent_online_after_polls or (
            self.online_only_reissued and not reissued
        ):
            raise NotReady(ErrorType.AGENT_NOT_READY, "not registered yet")
        if query.activation_id:
            request = self.activations[query.activation_id]
            tags = dict(request.tags) if self.agent_tags_land else {}
            managed = ManagedInstance(
                instance_id=f"mi-{len(self.managed):017x}", ping_status="Online", tags=tags, activation_id=query.activation_id
            )
            self.managed[request.tags["fleetpatch:instance-key"]] = managed
            return ManagedInstanceResult(instance=managed)
        managed = ManagedInstance(instance_id=query.instance_id or "", ping_status="Online", tags={})
        self.managed[f"ec2/{query.instance_id}"] = managed
        return ManagedInstanceResult(instance=managed)

    @activity.defn(name=ActivityName.TAG_MANAGED_INSTANCE)
    async def tag_managed_instance(self, inp: TagManagedInstanceInput) -> None:
        self.calls["tag_managed"] += 1
        for managed in self.managed.values():
            if managed.instance_id == inp.instance_id:
                managed.tags.update(inp.tags)

    @activity.defn(name=ActivityName.RECORD_ENROLLMENT_EVIDENCE)
    async def record_enrollment_evidence(self, inp: EnrollmentEvidence) -> RecordEvidenceResult:
        self.calls["record_evidence"] += 1
        self.evidence.append(inp)
        return RecordEvidenceResult(created=True)

    def provider_activities(self) -> list:
        return [self.verify_identity, self.read_vm_metadata, self.tag_ec2_instance]

    def aws_activities(self) -> list:
        return [
            self.get_link, self.find_systems_account, self.submit_create_account, self.poll_create_account,
            self.tag_systems_account, self.apply_ssm_configuration, self.create_activation, self.activate_new_instance,
            self.delete_activation,
            self.find_managed_instance, self.await_managed_instance, self.tag_managed_instance,
            self.check_activation,
            self.record_enrollment_evidence,
        ]

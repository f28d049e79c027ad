"""Contracts of enrollment: tenant links, systems accounts, SSM configuration, activations."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from contracts.identity import VerifiedIdentity
from contracts.providers import OsFamily, PatchGroup, Provider

#: Bump when the SSM configuration of a systems account changes (baselines, roles, associations):
#: every systems account re-applies it, idempotently, at its next enrollment.
SSM_CONFIGURATION_VERSION = 1

# Tag keys fleetpatch writes on accounts, activations and managed instances.
TAG_PATCH_GROUP = "Patch Group"
TAG_PROVIDER = "fleetpatch:provider"
TAG_CLOUD_ACCOUNT = "fleetpatch:cloud-account"
TAG_CUSTOMER = "fleetpatch:customer"
TAG_INSTANCE_KEY = "fleetpatch:instance-key"
TAG_ENROLLMENT_ID = "fleetpatch:enrollment"
TAG_MANAGED_BY = "fleetpatch:managed-by"


class EnrollmentState(StrEnum):
    """Values of the EnrollmentState search attribute."""

    VERIFYING = "verifying"
    VENDING = "vending"
    CONFIGURING = "configuring"
    AWAITING_AGENT = "awaiting-agent"
    ENROLLED = "enrolled"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass
class TenantLink:
    """A customer cloud account fleetpatch may enroll VMs from. Stored in the management
    account's Parameter Store at ``/fleetpatch/links/{provider}/{cloud account}``."""

    provider: Provider
    cloud_account: str
    customer: str
    default_patch_group: PatchGroup = PatchGroup.ON_TIME
    time_zone: str = "UTC"
    role_arn: str | None = None  # aws: the cross-account role in the customer's own account
    external_id: str | None = None  # aws: ExternalId for that role, if the customer set one
    vcenter_public_keys: list[str] = field(default_factory=list)  # vmware: PEM, newest first
    windows: dict[str, Any] = field(default_factory=dict)  # patch-window overrides per group
    # vmware: a folder or resource pool (inventory path, e.g. "DC0/vm/acme") when the vCenter is
    # shared by several customers: tokens go only to VMs inside it, and only they enroll.
    vcenter_scope: str | None = None
    # Session Manager: the systems account's nodes accept sessions (advanced tier, logged to S3)
    remote_access: bool = False


@dataclass
class LinkKey:
    provider: Provider
    cloud_account: str


@dataclass
class GetLinkResult:
    link: TenantLink | None


@dataclass
class ListLinksResult:
    links: list[TenantLink]


@dataclass
class SystemsAccountInput:
    provider: Provider
    cloud_account: str
    customer: str
    time_zone: str = "UTC"
    role_arn: str | None = None  # aws: no vending, the customer's account through this role
    external_id: str | None = None
    windows: dict[str, Any] = field(default_factory=dict)
    queue_prefix: str = ""


@dataclass
class SystemsAccount:
    """Where a customer cloud account's VMs are managed."""

    account_id: str
    provider: Provider
    cloud_account: str
    customer: str
    role_arn: str  # the role fleetpatch assumes to act in it
    external_id: str | None = None
    region: str = "us-east-1"
    configuration_version: int = 0
    adopted: bool = False  # True when an existing account was found instead of created


@dataclass
class AccountLookup:
    """Find the account vended for a customer cloud account (deterministic email, then tags)."""

    provider: Provider
    cloud_account: str
    customer: str


@dataclass
class FoundAccount:
    email: str
    name: str
    account_id: str | None = None
    role_arn: str | None = None


@dataclass
class CreateAccountRequest:
    name: str
    email: str
    tags: dict[str, str]


@dataclass
class CreateAccountSubmitted:
    request_id: str


@dataclass
class CreateAccountStatus:
    state: str  # IN_PROGRESS | SUCCEEDED | FAILED
    account_id: str | None = None
    failure_reason: str | None = None
    role_arn: str | None = None


@dataclass
class TagAccountInput:
    account_id: str
    tags: dict[str, str]


@dataclass
class AccountRef:
    """How to act in a systems account."""

    account_id: str
    role_arn: str
    external_id: str | None = None
    region: str = "us-east-1"


@dataclass
class SsmConfigurationInput:
    account: AccountRef
    version: int = SSM_CONFIGURATION_VERSION
    queue_prefix: str = ""


@dataclass
class SsmConfigurationResult:
    version: int
    service_role: str
    baselines: dict[str, str]  # "{os}/{group}" -> baseline id
    inventory_association_id: str
    changed: bool
    agent_update_association_id: str = ""  # AWS-UpdateSSMAgent on every managed instance


@dataclass
class ActivationRequest:
    account: AccountRef
    service_role: str
    default_instance_name: str
    idempotency_key: str  # from the workflow: enrollment id + step
    tags: dict[str, str]
    expiry_seconds: int


@dataclass
class Activation:
    id: str
    code: str
    region: str


@dataclass
class ManagedInstanceQuery:
    account: AccountRef
    activation_id: str | None = None
    instance_key: str | None = None
    instance_id: str | None = None  # EC2: the i- id


@dataclass
class ManagedInstance:
    instance_id: str
    ping_status: str
    tags: dict[str, str]
    activation_id: str | None = None
    platform: str | None = None


@dataclass
class ManagedInstanceResult:
    instance: ManagedInstance | None


@dataclass
class TagManagedInstanceInput:
    account: AccountRef
    instance_id: str
    tags: dict[str, str]


@dataclass
class DeleteActivationInput:
    account: AccountRef
    activation_id: str


@dataclass
class ActivationCheck:
    """An activation as SSM describes it now: whether a VM can still register with it."""

    exists: bool
    expired: bool = False
    used: bool = False  # its registration limit is reached

    @property
    def usable(self) -> bool:
        return self.exists and not self.expired and not self.used


@dataclass
class Ec2TagInput:
    account_id: str
    region: str
    instance_id: str
    role_arn: str | None
    external_id: str | None
    tags: dict[str, str]


def account_tags(customer: str, provider: Provider, cloud_account: str) -> dict[str, str]:
    """The tags that say which customer cloud account a systems account serves."""
    return {
        TAG_PROVIDER: Provider(provider).value,
        TAG_CLOUD_ACCOUNT: cloud_account,
        TAG_CUSTOMER: customer,
        TAG_MANAGED_BY: "fleetpatch",
    }


@dataclass
class AwaitWorkflowInput:
    """Wait for a shared workflow someone else started (e.g. a systems account being vended)."""

    workflow_id: str


@dataclass
class EnrollmentPolicy:
    """Configuration the API hands each enrollment (workflows read no settings themselves)."""

    patching_label: str = "rackspace-addon-patching"
    patch_group_label: str = "rackspace-addon-patching-patchgroup"
    activation_expiry_seconds: int = 24 * 3600
    agent_online_timeout_seconds: int = 30 * 60


@dataclass
class EnrollInput:
    provider: Provider
    instance_key: str  # as the API read it from the unverified identity; must match the verified one
    identity: dict[str, Any]
    hostname: str
    os: OsFamily
    os_version: str
    secret_digest: str  # SHA-256 of the enrollment id's secret half: only its holder reads the answer
    nonce: str | None = None
    resource_id: str | None = None
    policy: EnrollmentPolicy = field(default_factory=EnrollmentPolicy)
    queue_prefix: str = ""


@dataclass
class RegistrationAnswer:
    """What the registering VM gets back (the update's result)."""

    enrollment_id: str
    systems_account: str
    patch_group: str
    activation: Activation | None = None
    managed_instance_id: str | None = None


@dataclass
class RegisterRequest:
    """The ``register`` update's argument: the digest of the enrollment id this registration's
    answer carries (a VM that registers again gets a new id, and may poll with it)."""

    secret_digest: str = ""


@dataclass
class EnrollmentStatusQuery:
    secret_digest: str


@dataclass
class EnrollmentStatus:
    state: EnrollmentState
    owner: bool = False  # the query presented the enrollment id's secret: only then the rest is filled
    answer: RegistrationAnswer | None = None
    error_type: str | None = None
    reason: str | None = None


@dataclass
class LinkCommand:
    """What an operator asks of the tenant links (run as a LinkAdmin workflow: audited)."""

    action: str  # "put" | "delete" | "list"
    link: TenantLink | None = None
    key: LinkKey | None = None
    queue_prefix: str = ""
    # put: the link's systems account when one is vended already, so a link that now allows
    # remote access prepares it at once (not only at the next enrollment)
    account: AccountRef | None = None


@dataclass
class LinkCommandResult:
    links: list[TenantLink] = field(default_factory=list)
    removed: bool = False


@dataclass
class EnrollResult:
    """An enrolled VM; or, with ``refused`` set (the refusal's error type) and ``reason``, a VM that
    may not enroll: a refusal completes its workflow (FAILED means something broke)."""

    identity: VerifiedIdentity | None = None
    customer: str = ""
    systems_account: str = ""
    patch_group: PatchGroup | None = None
    managed_instance_id: str = ""
    activation_id: str | None = None
    refused: str | None = None
    reason: str | None = None


@dataclass
class Ec2UntagInput:
    account_id: str
    region: str
    instance_id: str
    role_arn: str | None
    external_id: str | None
    keys: list[str]


@dataclass
class DeregisterInput:
    account: AccountRef
    instance_id: str


@dataclass
class ReenrollInput:
    """An operator allows a VM that is already enrolled to enrol again (trust on first use)."""

    provider: Provider
    instance_key: str
    region: str = "us-east-1"  # aws: the instance's region
    queue_prefix: str = ""


@dataclass
class ReenrollResult:
    done: str  # what was undone, for the operator
    managed_instance_id: str | None = None

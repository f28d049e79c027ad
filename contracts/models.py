"""Dataclasses that cross the workflow/activity boundary: one in, one out, for every call.

Fields are only ever added (with defaults), never renamed or removed: running workflow histories
hold these shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.enrollment import AccountRef
from contracts.identity import VerifiedIdentity
from contracts.providers import Provider, WorkerRole


class ActivityName:
    """Every activity's name, in one registry. Provider workers share the first names (the task
    queue picks the provider). The values are what histories hold: never change one, only add."""

    PING = "ping"
    VERIFY_IDENTITY = "verify_identity"
    READ_VM_METADATA = "read_vm_metadata"
    TAG_EC2_INSTANCE = "tag_ec2_instance"
    UNTAG_EC2_INSTANCE = "untag_ec2_instance"
    LIST_CLOUD_VMS = "list_cloud_vms"  # reconcile: every VM of a linked cloud account
    ENSURE_VCENTER_TOKENS = "ensure_vcenter_tokens"  # vmware worker: tokens for labelled VMs
    REPLACE_VCENTER_TOKEN = "replace_vcenter_token"  # vmware worker: after an enrollment used one

    # aws worker: Session Manager
    ENABLE_REMOTE_ACCESS = "enable_remote_access"

    # aws worker
    GET_LINK = "get_link"
    PUT_LINK = "put_link"
    DELETE_LINK = "delete_link"
    LIST_LINKS = "list_links"
    FIND_SYSTEMS_ACCOUNT = "find_systems_account"
    SUBMIT_CREATE_ACCOUNT = "submit_create_account"
    POLL_CREATE_ACCOUNT = "poll_create_account"
    TAG_SYSTEMS_ACCOUNT = "tag_systems_account"
    APPLY_SSM_CONFIGURATION = "apply_ssm_configuration"
    CREATE_ACTIVATION = "create_activation"
    DELETE_ACTIVATION = "delete_activation"
    CHECK_ACTIVATION = "check_activation"  # a VM registered again: is its activation still usable?
    FIND_MANAGED_INSTANCE = "find_managed_instance"
    ACTIVATE_NEW_INSTANCE = "activate_new_instance"  # trust on first use + CreateActivation in one call
    AWAIT_MANAGED_INSTANCE = "await_managed_instance"
    TAG_MANAGED_INSTANCE = "tag_managed_instance"
    DEREGISTER_MANAGED_INSTANCE = "deregister_managed_instance"

    # aws worker: patch windows
    RESOLVE_PATCH_TARGETS = "resolve_patch_targets"
    SEND_PATCH_COMMAND = "send_patch_command"
    POLL_PATCH_COMMANDS = "poll_patch_commands"
    CANCEL_PENDING_INVOCATIONS = "cancel_pending_invocations"
    COLLECT_PATCH_BATCH = "collect_patch_batch"
    READ_RING_RECORD = "read_ring_record"
    RECORD_RING_RUN = "record_ring_run"
    RECORD_PATCH_TRAIN = "record_patch_train"
    READ_CUSTOMER_RINGS = "read_customer_rings"
    COPY_CUSTOMER_TRAIN = "copy_customer_train"

    # aws worker: reconcile
    LIST_MANAGED_NODES = "list_managed_nodes"
    APPLY_RECONCILE_ACTION = "apply_reconcile_action"
    RECORD_RECONCILE_ACTIONS = "record_reconcile_actions"  # into the estate store

    # aws worker: the estate store (ComplianceSync, and PatchWindow's last step)
    LIST_SYNC_ACCOUNTS = "list_sync_accounts"
    SYNC_ACCOUNT_ESTATE = "sync_account_estate"
    RECORD_COMPLIANCE_AGGREGATES = "record_compliance_aggregates"
    RECORD_WINDOW_RESULTS = "record_window_results"
    RECORD_ENROLLMENT_EVIDENCE = "record_enrollment_evidence"  # EnrollVm's last step: how the VM proved itself

    # orchestrator worker (talks to Temporal itself)
    AWAIT_WORKFLOW = "await_workflow"
    READ_KNOWN_SETUP = "read_known_setup"  # local: completed SystemsAccount/SsmConfiguration results
    ENSURE_WINDOW_SCHEDULES = "ensure_window_schedules"


# --- doctor --------------------------------------------------------------------------------


@dataclass
class PingInput:
    role: WorkerRole
    sent_by: str = ""


@dataclass
class PingResult:
    role: WorkerRole
    hostname: str
    pid: int
    task_queue: str
    version: str


@dataclass
class DoctorInput:
    roles: list[WorkerRole]
    queue_prefix: str = ""
    timeout_seconds: float = 10.0


@dataclass
class RoleStatus:
    role: WorkerRole
    task_queue: str
    ok: bool
    detail: str
    latency_ms: float | None = None


@dataclass
class DoctorResult:
    statuses: list[RoleStatus]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.statuses)


# --- identity and VM metadata (per-provider task queues) -----------------------------------


@dataclass
class VerifyIdentityInput:
    """What the VM sent, as received by the API (shape already checked), plus trust from links.

    ``identity`` per provider: gcp ``{"token"}``; azure ``{"attested": {"encoding", "signature"}}``;
    aws ``{"rsa2048"}`` (or ``{"pkcs7"}``, ``{"document", "signature"}`` where accepted);
    vmware ``{"token", "bios_uuid"}``.
    """

    provider: Provider
    identity: dict[str, Any]
    nonce: str | None = None  # azure: the server-issued nonce the VM asked IMDS to sign
    vcenter_public_keys: list[str] = field(default_factory=list)  # vmware: PEM keys from the link
    vcenter_scope: str | None = None  # vmware: the link's folder or resource pool, if any


@dataclass
class VmMetadataInput:
    identity: VerifiedIdentity
    resource_id: str | None = None  # azure: the ARM id the VM says it has; must carry the vmId
    role_arn: str | None = None  # aws: the customer's cross-account role from the link
    external_id: str | None = None


@dataclass
class VmMetadata:
    """A VM as its own cloud's API describes it."""

    provider: Provider
    cloud_account: str
    instance_id: str
    name: str
    labels: dict[str, str]
    state: str
    region: str | None = None


# --- Session Manager (aws worker) ------------------------------------------------------------


@dataclass
class RemoteAccessInput:
    account: AccountRef


@dataclass
class RemoteAccessResult:
    activation_tier: str
    log_bucket: str
    preferences_version: str
    changed: list[str] = field(default_factory=list)  # what this call changed (empty: all was set)

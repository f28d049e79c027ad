"""Contracts of Reconcile: a cloud's VMs, a systems account's managed instances, and what
reconcile does (or, on a dry run, would do) to keep SSM true to the cloud.

Fields are only ever added (with defaults): running histories hold these shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from contracts.enrollment import AccountRef
from contracts.models import VmMetadata
from contracts.providers import Provider


class ActionKind(StrEnum):
    """What reconcile does about one VM or managed instance."""

    DEREGISTER = "deregister"  # the managed instance leaves SSM
    DELETE_ACTIVATION = "delete-activation"  # an unused activation of a VM that is gone
    RETAG = "retag"  # the managed instance's Patch Group follows the VM's label
    EC2_RETAG = "ec2-retag"  # EC2: the instance's Patch Group tag follows its label
    EC2_UNTAG = "ec2-untag"  # EC2: the fleetpatch tags leave an instance no longer labelled
    REPORT_UNENROLLED = "report-unenrolled"  # a labelled VM that never enrolled: report only
    REPORT_ABSENT_ONLINE = "report-absent-online"  # missing from the cloud's list, its agent online: report only


#: Kinds that change nothing: reported, never applied.
REPORT_ONLY = frozenset({ActionKind.REPORT_UNENROLLED, ActionKind.REPORT_ABSENT_ONLINE})


@dataclass
class ReconcilePolicy:
    """Label names, as configured (workflows read no settings)."""

    patching_label: str = "rackspace-addon-patching"
    patch_group_label: str = "rackspace-addon-patching-patchgroup"


@dataclass
class ReconcileInput:
    provider: Provider
    cloud_account: str
    dry_run: bool = False
    policy: ReconcilePolicy = field(default_factory=ReconcilePolicy)
    queue_prefix: str = ""
    #: Offboarding: every managed instance leaves SSM, every pending activation is deleted
    #: (EC2: the fleetpatch tags leave the instances), whatever the labels say.
    offboard: bool = False
    #: Only this VM (``{cloud account}/{instance id}``): ``fleetpatch instances remove``.
    instance_key: str | None = None
    #: The SSM configuration version the systems account must hold; None: this release's.
    configuration_version: int | None = None


@dataclass
class ListCloudVmsInput:
    """List every VM of one linked cloud account through that cloud's SDK."""

    provider: Provider
    cloud_account: str
    role_arn: str | None = None  # aws: the link's cross-account role
    external_id: str | None = None
    regions: list[str] = field(default_factory=list)  # aws: where to look; empty: the worker's own
    scope: str | None = None  # vmware: the link's folder or resource pool (only its VMs are the link's)


@dataclass
class ListCloudVmsResult:
    vms: list[VmMetadata]


@dataclass
class ManagedNode:
    """A managed instance of a systems account as reconcile compares it."""

    instance_id: str
    instance_key: str
    ping_status: str
    registered_at: str  # ISO 8601, as SSM reports it (sorts in time order)
    tags: dict[str, str] = field(default_factory=dict)
    activation_id: str | None = None


@dataclass
class PendingActivation:
    """An activation fleetpatch created for a VM and nobody has deleted yet."""

    activation_id: str
    instance_key: str
    expired: bool = False


@dataclass
class ListManagedInput:
    account: AccountRef
    provider: Provider
    cloud_account: str


@dataclass
class ListManagedResult:
    nodes: list[ManagedNode]
    activations: list[PendingActivation] = field(default_factory=list)


@dataclass
class ReconcileAction:
    """One thing reconcile does, with the evidence that decided it."""

    kind: ActionKind
    instance_key: str
    target: str  # managed instance id, activation id or EC2 instance id
    reason: str
    evidence: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # retag: the tags to set
    applied: bool = False
    error: str | None = None


@dataclass
class ApplyActionInput:
    account: AccountRef
    action: ReconcileAction
    region: str | None = None  # ec2: the instance's region


@dataclass
class ReconcileResult:
    provider: Provider
    cloud_account: str
    dry_run: bool
    systems_account: str | None
    vms_seen: int
    managed_seen: int
    actions: list[ReconcileAction] = field(default_factory=list)
    #: Configuration drift: the version the systems account now holds (None: not checked, on a
    #: dry run, offboarding or before anything enrolled) and the window schedules brought up to date.
    configuration_version: int | None = None
    windows_ensured: list[str] = field(default_factory=list)


@dataclass
class RecordReconcileInput:
    """One run's actions, into the estate store (aws worker): what was done, with its evidence."""

    provider: Provider
    cloud_account: str
    customer: str
    systems_account: str | None
    workflow_id: str
    run_id: str
    at: datetime  # workflow.now() when the run recorded them
    actions: list[ReconcileAction] = field(default_factory=list)

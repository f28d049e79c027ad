"""Contracts of the estate store: what the sync and the patch windows hand to its writers.

The estate store (package ``estate``) is a read model filled from SSM. Only activities write it:
``ComplianceSync`` builds one ``AccountSnapshot`` per systems account and the activity applies it
with ``estate.writes.apply_account_snapshot``; every ``PatchWindow`` run hands its instances'
results to ``estate.writes.record_window_runs`` when it ends.

Every dataclass crosses the workflow/activity boundary: fields are only ever added, with defaults.
Timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Compliance(StrEnum):
    """An instance's compliance, derived from its patch state (see ``compliance_of``)."""

    COMPLIANT = "compliant"
    NON_COMPLIANT = "non_compliant"
    UNKNOWN = "unknown"


class PatchState(StrEnum):
    """SSM's patch states (DescribeInstancePatches ``State``)."""

    INSTALLED = "Installed"
    INSTALLED_OTHER = "InstalledOther"
    INSTALLED_PENDING_REBOOT = "InstalledPendingReboot"
    INSTALLED_REJECTED = "InstalledRejected"
    MISSING = "Missing"
    FAILED = "Failed"
    NOT_APPLICABLE = "NotApplicable"


#: States that leave an instance exposed (the patch is needed and not in place).
EXPOSED_STATES: frozenset[str] = frozenset({PatchState.MISSING, PatchState.FAILED})

#: The severity that counts towards ``critical_missing``.
CRITICAL = "Critical"


@dataclass
class InstanceSnapshot:
    """One managed instance (hybrid ``mi-...`` or EC2 ``i-...``) as SSM and the enrollment know it.

    The patch state (DescribeInstancePatchStates) is present when ``operation`` is set
    ("Scan" or "Install"); with no patch state yet the counters stay 0 and the instance's
    compliance is ``unknown``.
    """

    managed_instance_id: str
    systems_account: str
    instance_key: str | None = None  # the cloud's own id, e.g. "acme-prod/1234567890"
    provider: str | None = None  # gcp | azure | vmware | ec2
    customer: str | None = None
    cloud_account: str | None = None  # GCP project, Azure subscription, vCenter id, AWS account
    patch_group: str | None = None
    os_name: str | None = None  # PlatformName, e.g. "Ubuntu"
    os_version: str | None = None  # PlatformVersion
    platform_type: str | None = None  # Linux | Windows
    agent_version: str | None = None
    ping_status: str | None = None  # Online | ConnectionLost | Inactive
    last_seen: datetime | None = None  # LastPingDateTime
    # The enrollment that brought it in (the audit chain from identity to result). SSM knows only
    # the run (a tag); the identity evidence is what EnrollVm records itself (``contracts.evidence``,
    # table ``enrollment_evidence``), which reads prefer over the ``evidence_*`` fields here.
    workflow_id: str | None = None
    workflow_run_id: str | None = None
    evidence_provider: str | None = None
    evidence_key_id: str | None = None  # key id (JWKS kid) or signer certificate fingerprint
    evidence_digest: str | None = None  # sha256 of the identity document the VM presented
    evidence_at: datetime | None = None  # when the identity was verified
    # Patch state.
    installed: int = 0
    installed_other: int = 0
    installed_pending_reboot: int = 0
    installed_rejected: int = 0
    missing: int = 0
    failed: int = 0
    not_applicable: int = 0
    baseline_id: str | None = None
    operation: str | None = None  # Scan | Install; None: no patch state yet
    operation_start: datetime | None = None
    operation_end: datetime | None = None


@dataclass
class PatchRecord:
    """One patch of one instance (DescribeInstancePatches)."""

    managed_instance_id: str
    title: str
    kb_id: str  # KB id (Windows) or package name (Linux)
    state: str  # a PatchState value
    classification: str | None = None
    severity: str | None = None
    cve_ids: list[str] = field(default_factory=list)
    installed_time: datetime | None = None


@dataclass
class SoftwareItem:
    """One application of one instance (inventory ``AWS:Application``)."""

    managed_instance_id: str
    name: str
    version: str | None = None
    publisher: str | None = None
    architecture: str | None = None


@dataclass
class BaselineRecord:
    """A patch baseline of a systems account (GetPatchBaseline), for the instance detail."""

    baseline_id: str
    name: str
    operating_system: str | None = None
    approval_rule: str | None = None  # human-readable, e.g. "approve after 7 days: Security, Critical"
    patch_group: str | None = None


@dataclass
class AccountSnapshot:
    """Everything SSM says about one systems account at ``taken_at``.

    Applying it upserts every row it holds and marks the account's instances that it does not
    hold as departed (never erased). Patches and software of an instance in the snapshot replace
    what the store had for that instance.
    """

    systems_account: str
    taken_at: datetime
    instances: list[InstanceSnapshot] = field(default_factory=list)
    patches: list[PatchRecord] = field(default_factory=list)
    software: list[SoftwareItem] = field(default_factory=list)
    baselines: list[BaselineRecord] = field(default_factory=list)


@dataclass
class WindowRunRecord:
    """One instance's result in one PatchWindow run."""

    window_workflow_id: str
    run_id: str
    systems_account: str
    patch_group: str
    managed_instance_id: str
    status: str  # the command invocation's status: Success | Failed | TimedOut | Cancelled | ...
    outcome: str | None = None  # the window's WindowOutcome
    installed: int = 0
    missing: int = 0
    failed: int = 0
    ended: datetime | None = None
    os: str | None = None  # the instance's OS family, as the window planned it ("ubuntu")
    held: bool = False  # only scanned: no early instance of this OS in the customer's estate
    baseline_id: str | None = None  # the patch state's BaselineId: the baseline the window patched with


@dataclass
class ApplyResult:
    """What ``apply_account_snapshot`` did (the sync activity's answer)."""

    systems_account: str
    instances: int = 0
    new: int = 0
    departed: int = 0
    returned: int = 0
    patches: int = 0
    software: int = 0


def compliance_of(operation: str | None, missing: int, failed: int) -> Compliance:
    """The compliance rule: unknown without patch state, non-compliant with any missing or failed patch."""
    if operation is None:
        return Compliance.UNKNOWN
    return Compliance.NON_COMPLIANT if (missing or 0) + (failed or 0) > 0 else Compliance.COMPLIANT

"""What the read functions return, and the ``Scope`` every one of them is filtered by."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from contracts.estate import BaselineRecord, PatchRecord, SoftwareItem

#: Keys ``compliance(..., group_by=...)`` accepts (``os`` is the OS name).
GROUP_KEYS: tuple[str, ...] = ("customer", "provider", "patch_group", "systems_account", "os")


@dataclass(frozen=True)
class Scope:
    """Who is reading: an admin sees everything, a customer only rows of its own customer."""

    customer: str | None = None
    admin: bool = False
    token_id: str | None = None

    def __post_init__(self) -> None:
        if self.admin == (self.customer is not None):
            raise ValueError("a scope is either admin or exactly one customer")

    @classmethod
    def everything(cls, token_id: str | None = None) -> Scope:
        return cls(admin=True, token_id=token_id)

    @classmethod
    def of_customer(cls, customer: str, token_id: str | None = None) -> Scope:
        if not customer:
            raise ValueError("customer must not be empty")
        return cls(customer=customer, token_id=token_id)


@dataclass
class Counters:
    instances: int = 0
    compliant: int = 0
    non_compliant: int = 0
    unknown: int = 0
    missing: int = 0
    failed: int = 0
    critical_missing: int = 0


@dataclass
class ComplianceGroup:
    keys: dict[str, str | None]  # one entry per group_by key, in its order
    counters: Counters


@dataclass
class ComplianceReport:
    as_of: datetime | None  # the newest snapshot or window result the numbers include
    group_by: list[str]
    groups: list[ComplianceGroup]
    totals: Counters
    # customer -> OS families its later rings only scanned: no early instance of that OS in its estate
    held_os: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class InstanceFilters:
    """Filters of ``list_instances``; a customer scope narrows them further, never widens them."""

    customer: str | None = None
    provider: str | None = None
    patch_group: str | None = None
    systems_account: str | None = None
    compliance: str | None = None  # a Compliance value
    cve: str | None = None  # instances still exposed to this CVE
    os: str | None = None
    include_departed: bool = False
    failing_first: bool = False  # non_compliant, then unknown, then compliant


@dataclass
class InstanceRow:
    managed_instance_id: str
    instance_key: str | None
    provider: str | None
    customer: str | None
    cloud_account: str | None
    systems_account: str
    patch_group: str | None
    os_name: str | None
    os_version: str | None
    agent_version: str | None
    ping_status: str | None
    last_seen: datetime | None
    compliance: str
    installed: int
    installed_other: int
    installed_pending_reboot: int
    missing: int
    failed: int
    not_applicable: int
    critical_missing: int
    operation: str | None
    operation_end: datetime | None
    baseline_id: str | None
    departed_at: datetime | None
    updated_at: datetime | None


@dataclass
class InstancePage:
    instances: list[InstanceRow]
    next_cursor: str | None  # opaque; None on the last page


@dataclass
class Evidence:
    provider: str | None
    key_id: str | None  # what ``key_kind`` names (contracts.evidence.KeyKind)
    digest: str | None  # SHA-256 (hex) of the identity the VM presented, never the identity
    verified_at: datetime | None
    key_kind: str | None = None  # kid | signer_certificate_sha256 | link_key_sha256


@dataclass
class Enrollment:
    workflow_id: str | None
    run_id: str | None


@dataclass
class WindowRun:
    window_workflow_id: str
    run_id: str
    patch_group: str
    status: str
    outcome: str | None
    installed: int
    missing: int
    failed: int
    ended: datetime | None


@dataclass
class InstanceDetail:
    instance: InstanceRow
    evidence: Evidence
    enrollment: Enrollment
    baseline: BaselineRecord | None
    patches: list[PatchRecord] = field(default_factory=list)
    inventory: list[SoftwareItem] = field(default_factory=list)
    windows: list[WindowRun] = field(default_factory=list)  # newest first


@dataclass
class ExposureGroup:
    customer: str | None
    provider: str | None
    instances: list[str]  # managed instance ids, sorted


@dataclass
class CveExposure:
    cve_id: str
    instances: int
    groups: list[ExposureGroup]


@dataclass
class TrendPoint:
    at: datetime
    customer: str | None  # None: every customer the scope sees
    counters: Counters


@dataclass
class TokenInfo:
    id: str
    label: str
    customer: str | None  # None: an admin token
    created_at: datetime
    revoked_at: datetime | None

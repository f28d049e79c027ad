"""The patch baselines fleetpatch keeps in every systems account: one per OS and patch group.

Approval delays are the rings: ``early`` 0 days, ``on-time`` 7, ``late`` 14. SSM has no
approve-after-days for Ubuntu and Debian; their baselines approve on release and the delay is
held by the patch train (later rings install exactly what the early ring installed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.providers import NO_APPROVAL_DELAY, OsFamily, PatchGroup


@dataclass(frozen=True)
class BaselineSpec:
    os: OsFamily
    group: PatchGroup

    @property
    def key(self) -> str:
        return f"{self.os.value}/{self.group.value}"

    @property
    def name(self) -> str:
        return f"fleetpatch-{self.os.value}-{self.group.value}"

    def description(self) -> str:
        if self.os in NO_APPROVAL_DELAY:
            return (
                f"fleetpatch {self.group.value} ring for {self.os.value}: approves on release; "
                f"the {self.group.approve_after_days}-day delay is held by fleetpatch's patch train"
            )
        return f"fleetpatch {self.group.value} ring for {self.os.value}: approve after {self.group.approve_after_days} days"

    def approval_rules(self) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "PatchFilterGroup": {"PatchFilters": _filters(self.os)},
            "ComplianceLevel": "CRITICAL" if self.os is OsFamily.WINDOWS else "HIGH",
            "EnableNonSecurity": False,
        }
        if self.os not in NO_APPROVAL_DELAY:
            rule["ApproveAfterDays"] = self.group.approve_after_days
        if self.os is OsFamily.WINDOWS:
            rule.pop("EnableNonSecurity")
        return {"PatchRules": [rule]}

    def request(self) -> dict[str, Any]:
        """CreatePatchBaseline / UpdatePatchBaseline arguments (minus ids)."""
        return {
            "OperatingSystem": self.os.ssm_operating_system,
            "Name": self.name,
            "Description": self.description(),
            "ApprovalRules": self.approval_rules(),
        }


def _filters(os: OsFamily) -> list[dict[str, Any]]:
    if os is OsFamily.WINDOWS:
        return [
            {"Key": "PRODUCT", "Values": ["*"]},
            {"Key": "CLASSIFICATION", "Values": ["CriticalUpdates", "SecurityUpdates", "UpdateRollups"]},
            {"Key": "MSRC_SEVERITY", "Values": ["Critical", "Important"]},
        ]
    if os in NO_APPROVAL_DELAY:
        return [
            {"Key": "PRODUCT", "Values": ["*"]},
            {"Key": "PRIORITY", "Values": ["Required", "Important", "Standard"]},
        ]
    return [
        {"Key": "PRODUCT", "Values": ["*"]},
        {"Key": "CLASSIFICATION", "Values": ["Security", "Bugfix"]},
        {"Key": "SEVERITY", "Values": ["Critical", "Important"]},
    ]


def all_specs() -> list[BaselineSpec]:
    return [BaselineSpec(os, group) for os in OsFamily for group in PatchGroup]

"""Scan and Install against a VM's software, judged by a patch baseline (pure).

Patch states are Patch Manager's: INSTALLED (approved and installed), INSTALLED_OTHER (installed,
not approved), INSTALLED_PENDING_REBOOT (installed by an Install without reboot, until the next
reboot), INSTALLED_REJECTED (installed although rejected, when the baseline BLOCKs rejected
patches), MISSING (approved, applicable, not installed), FAILED (the last Install failed it),
NOT_APPLICABLE (approved but its software is not on the VM) and, on Windows,
AVAILABLE_SECURITY_UPDATE (a security update the baseline does not approve).

Install installs, per package, the newest approved version that is newer than the installed one
(on Windows: every missing approved KB); with an install override list it installs what the list
names instead (see ``override``). RebootIfNeeded reboots when anything was installed or a reboot
was already pending; NoReboot leaves what it installed pending a reboot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from localclouds.fleet.approval import blocks_rejected, decide
from localclouds.fleet.catalogue import Catalogue, Installed, Patch
from localclouds.fleet.override import OverrideEntry, selects

NON_COMPLIANT = {"MISSING", "FAILED", "INSTALLED_PENDING_REBOOT", "INSTALLED_REJECTED"}
STATE_COUNTS = {
    "INSTALLED": "InstalledCount", "INSTALLED_OTHER": "InstalledOtherCount",
    "INSTALLED_PENDING_REBOOT": "InstalledPendingRebootCount",
    "INSTALLED_REJECTED": "InstalledRejectedCount", "MISSING": "MissingCount",
    "FAILED": "FailedCount", "NOT_APPLICABLE": "NotApplicableCount",
    "AVAILABLE_SECURITY_UPDATE": "AvailableSecurityUpdateCount",
}


@dataclass(frozen=True)
class PatchItem:
    patch: Patch
    state: str
    level: str = "UNSPECIFIED"

    @property
    def compliant(self) -> bool:
        return self.state not in NON_COMPLIANT


def evaluate(catalogue: Catalogue, installed: Installed, baseline: dict[str, Any],
             now: datetime) -> list[PatchItem]:
    """The compliance of every relevant patch: what a Scan reports."""
    block = blocks_rejected(baseline)
    items: list[PatchItem] = []
    for package in catalogue.packages:
        versions = catalogue.versions(package)
        decisions = {p: decide(p, baseline, now) for p in versions}
        if not installed.applicable(versions[0]):
            approved = [p for p in versions if decisions[p].approved]
            if approved:
                items.append(PatchItem(approved[-1], "NOT_APPLICABLE", decisions[approved[-1]]
                                       .compliance_level))
            continue
        current = _current(versions, installed)
        newer = [p for p in versions if decisions[p].approved and
                 (current is None or p.order > current.order)]
        if package in installed.failed:
            target = newer[-1] if newer else versions[-1]
            items.append(PatchItem(target, "FAILED", decisions[target].compliance_level))
        elif newer:
            items.append(PatchItem(newer[-1], "MISSING", decisions[newer[-1]].compliance_level))
        elif current is not None:
            items.append(_installed_item(current, decisions[current], installed, block))
        elif versions[-1].security and versions[-1].is_windows:
            items.append(PatchItem(versions[-1], "AVAILABLE_SECURITY_UPDATE"))
    return items


def _current(versions: list[Patch], installed: Installed) -> Patch | None:
    """The installed version of a package (Linux) or the KB when installed (Windows)."""
    return next((p for p in reversed(versions) if installed.has(p)), None)


def _installed_item(patch: Patch, decision: Any, installed: Installed, block: bool) -> PatchItem:
    if decision.rejected:
        return PatchItem(patch, "INSTALLED_REJECTED" if block else "INSTALLED_OTHER")
    if patch.package in installed.pending_reboot:
        return PatchItem(patch, "INSTALLED_PENDING_REBOOT", decision.compliance_level)
    if decision.approved:
        return PatchItem(patch, "INSTALLED", decision.compliance_level)
    return PatchItem(patch, "INSTALLED_OTHER")


def install_targets(catalogue: Catalogue, installed: Installed, baseline: dict[str, Any],
                    now: datetime, overrides: list[OverrideEntry] | None) -> list[Patch]:
    """What an Install operation installs: the baseline's missing patches, or the override list's."""
    if overrides is None:
        return [item.patch for item in evaluate(catalogue, installed, baseline, now)
                if item.state in ("MISSING", "FAILED") and decide(item.patch, baseline, now)
                .approved]
    targets = []
    for package in catalogue.packages:
        versions = catalogue.versions(package)
        if not installed.applicable(versions[0]):
            continue
        current = _current(versions, installed)
        wanted = [p for p in versions if selects(overrides, p)
                  and (current is None or p.order > current.order)
                  and not decide(p, baseline, now).rejected]
        if wanted:
            targets.append(wanted[-1])
    return targets


@dataclass
class InstallOutcome:
    installed: list[Patch] = field(default_factory=list)
    failed: list[Patch] = field(default_factory=list)
    rebooted: bool = False


def apply_install(installed: Installed, targets: list[Patch], failing: set[str],
                  reboot_option: str) -> InstallOutcome:
    """Install ``targets`` (those whose package is in ``failing`` fail), then maybe reboot."""
    outcome = InstallOutcome()
    for patch in targets:
        if patch.package in failing:
            installed.failed.add(patch.package)
            outcome.failed.append(patch)
            continue
        if patch.is_windows:
            installed.kbs.add(patch.package)
        else:
            installed.packages[patch.package] = patch.full_version
        installed.failed.discard(patch.package)
        installed.pending_reboot.add(patch.package)
        outcome.installed.append(patch)
    if reboot_option == "RebootIfNeeded" and installed.pending_reboot:
        installed.pending_reboot.clear()
        outcome.rebooted = True
    return outcome


def counts(items: list[PatchItem]) -> dict[str, int]:
    """The numbers of an AWS:PatchSummary / InstancePatchState."""
    result = {name: 0 for name in STATE_COUNTS.values()}
    result.update(UnreportedNotApplicableCount=0, CriticalNonCompliantCount=0,
                  SecurityNonCompliantCount=0, OtherNonCompliantCount=0)
    for item in items:
        result[STATE_COUNTS[item.state]] += 1
        if item.compliant:
            continue
        if item.level == "CRITICAL":
            result["CriticalNonCompliantCount"] += 1
        elif item.patch.security:
            result["SecurityNonCompliantCount"] += 1
        else:
            result["OtherNonCompliantCount"] += 1
    return result


def compliance_items(items: list[PatchItem], installed_times: dict[str, datetime]
                     ) -> list[dict[str, Any]]:
    """PutComplianceItems ``Items`` (ComplianceType Patch) for these patch states."""
    rows = []
    for item in items:
        details = {"Classification": item.patch.classification,
                   "PatchSeverity": item.patch.severity or item.patch.priority,
                   "PatchState": item.state}
        when = installed_times.get(item.patch.package)
        if when is not None and item.state.startswith("INSTALLED"):
            details["InstalledTime"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        if item.patch.cves:
            details["CVEIds"] = ",".join(item.patch.cves)
        rows.append({"Id": item.patch.package, "Title": item.patch.title[:500],
                     "Severity": item.level,
                     "Status": "COMPLIANT" if item.compliant else "NON_COMPLIANT",
                     "Details": details})
    return rows

"""Patch baseline approval, as Patch Manager evaluates a baseline against one patch (pure).

A patch is considered only when it passes the baseline's ``GlobalFilters``. It is *approved* when
it is in ``ApprovedPatches`` or when an approval rule approves it: every filter of the rule's
``PatchFilterGroup`` matches (values are OR-ed, filters AND-ed, ``*`` wildcards allowed) and it is
old enough - released at least ``ApproveAfterDays`` days before now, or on or before
``ApproveUntilDate``; Ubuntu and Debian rules have neither and approve on release. On Linux a rule
with ``EnableNonSecurity`` false approves only updates that come with an advisory (a
classification); updates from non-security repositories need it true. A patch in
``RejectedPatches`` is never approved; ``RejectedPatchesAction`` decides whether an installed
rejected patch is ``INSTALLED_OTHER`` (ALLOW_AS_DEPENDENCY) or ``INSTALLED_REJECTED`` (BLOCK).

Filter keys map to the catalogue: PRODUCT, CLASSIFICATION, SEVERITY (Linux), MSRC_SEVERITY
(Windows), PRIORITY and SECTION (APT), PATCH_SET (Windows: OS). Unknown keys match nothing.

Names in the approved/rejected lists follow Patch Manager's formats: Windows KB ids; on yum
systems full package names ``name-version-release.arch`` (one ``*`` wildcard allowed) and, for
approvals, CVE ids; on APT systems package names only.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from localclouds.fleet.catalogue import Patch

COMPLIANCE_LEVELS = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED")


@dataclass(frozen=True)
class Decision:
    approved: bool
    rejected: bool
    compliance_level: str = "UNSPECIFIED"


def _attribute(patch: Patch, key: str) -> str | None:
    if key == "PRODUCT":
        return patch.product
    if key == "CLASSIFICATION":
        return patch.classification
    if key == "SEVERITY":
        return None if patch.is_windows else patch.severity
    if key == "MSRC_SEVERITY":
        return patch.severity if patch.is_windows else None
    if key == "PRIORITY":
        return patch.priority or None
    if key == "SECTION":
        return patch.section or None
    if key == "PATCH_SET":
        return "OS" if patch.is_windows else None
    return None


def filter_matches(patch: Patch, patch_filter: dict[str, Any]) -> bool:
    value = _attribute(patch, str(patch_filter.get("Key", "")))
    if value is None:
        return False
    return any(fnmatch.fnmatchcase(value.lower(), str(pattern).lower())
               for pattern in patch_filter.get("Values") or [])


def filters_match(patch: Patch, group: dict[str, Any] | None) -> bool:
    """Every filter of a PatchFilterGroup matches (an empty group matches everything)."""
    return all(filter_matches(patch, f) for f in (group or {}).get("PatchFilters") or [])


def _old_enough(patch: Patch, rule: dict[str, Any], now: datetime) -> bool:
    if rule.get("ApproveUntilDate"):
        until = datetime.strptime(str(rule["ApproveUntilDate"])[:10], "%Y-%m-%d").date()
        return patch.released.date() <= until
    days = rule.get("ApproveAfterDays")
    if days is None:
        return True  # Ubuntu/Debian: no delay is possible
    return patch.released + timedelta(days=int(days)) <= now


def rule_approves(patch: Patch, rule: dict[str, Any], now: datetime) -> bool:
    if not filters_match(patch, rule.get("PatchFilterGroup")):
        return False
    if not patch.is_windows and not rule.get("EnableNonSecurity", False) and (
        not patch.classification
    ):
        return False
    return _old_enough(patch, rule, now)


def _spellings(patch: Patch) -> list[str]:
    """The names a Linux patch answers to in approved/rejected lists."""
    if not patch.release:  # APT: package names only
        return [patch.name]
    return [f"{patch.name}-{patch.full_version}.{patch.arch}",
            f"{patch.epoch}:{patch.name}-{patch.full_version}.{patch.arch}"]


def listed(patch: Patch, names: list[str], cves: bool) -> bool:
    """Is the patch named by one of ``names`` (Patch Manager's list formats)?"""
    if patch.is_windows:
        return patch.package.upper() in {str(n).upper() for n in names}
    spellings = _spellings(patch)
    for name in names:
        name = str(name)
        if cves and name.upper().startswith("CVE-"):
            if name.upper() in patch.cves:
                return True
            continue
        if name.count("*") > 1:
            continue  # one wildcard at most, as Patch Manager allows
        if any(fnmatch.fnmatchcase(s, name) for s in spellings):
            return True
    return False


def decide(patch: Patch, baseline: dict[str, Any], now: datetime) -> Decision:
    """Is ``patch`` approved (and at which compliance level) by ``baseline`` at ``now``?"""
    if listed(patch, list(baseline.get("RejectedPatches") or []), cves=False):
        return Decision(False, True)
    if not filters_match(patch, baseline.get("GlobalFilters")):
        return Decision(False, False)
    if listed(patch, list(baseline.get("ApprovedPatches") or []), cves=True):
        return Decision(True, False, _level(baseline.get("ApprovedPatchesComplianceLevel")))
    for rule in (baseline.get("ApprovalRules") or {}).get("PatchRules") or []:
        if rule_approves(patch, rule, now):
            return Decision(True, False, _level(rule.get("ComplianceLevel")))
    return Decision(False, False)


def blocks_rejected(baseline: dict[str, Any]) -> bool:
    return baseline.get("RejectedPatchesAction", "ALLOW_AS_DEPENDENCY") == "BLOCK"


def _level(value: Any) -> str:
    return value if value in COMPLIANCE_LEVELS else "UNSPECIFIED"

"""The approval engine and the patch catalogue: rules, filters, lists, approve-after days."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from clouds.aws.baselines import BaselineSpec
from contracts.providers import OsFamily, PatchGroup
from localclouds.fleet import catalogue
from localclouds.fleet.approval import decide, filters_match, listed
from localclouds.fleet.catalogue import Patch

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)


def _patch(days: int, **fields: object) -> Patch:
    base = Patch("openssl.x86_64", "openssl", "x86_64", "1", "1.1.1k", "12.el8",
                 NOW - timedelta(days=days), "Security", "Important", product="RedhatEnterpriseLinux8.9",
                 cves=("CVE-2024-1234",), order=1)
    return replace(base, **fields)  # type: ignore[arg-type]


def _baseline(days: int | None = 7, **extra: object) -> dict[str, object]:
    rule: dict[str, object] = {"PatchFilterGroup": {"PatchFilters": [
        {"Key": "PRODUCT", "Values": ["*"]},
        {"Key": "CLASSIFICATION", "Values": ["Security"]},
        {"Key": "SEVERITY", "Values": ["Critical", "Important"]}]}, "ComplianceLevel": "HIGH"}
    if days is not None:
        rule["ApproveAfterDays"] = days
    return {"ApprovalRules": {"PatchRules": [rule]}, **extra}


@pytest.mark.parametrize(("age", "days", "approved"), [
    (0, 0, True), (6, 7, False), (7, 7, True), (8, 7, True), (13, 14, False), (14, 14, True)])
def test_approve_after_days_counts_from_the_release_date(age: int, days: int, approved: bool) -> None:
    assert decide(_patch(age), _baseline(days), NOW).approved is approved


def test_approve_until_date() -> None:
    rule = {"PatchFilterGroup": {"PatchFilters": []}, "ApproveUntilDate": "2025-02-20"}
    baseline = {"ApprovalRules": {"PatchRules": [rule]}}
    assert decide(_patch(10), baseline, NOW).approved  # released 2025-02-19
    assert not decide(_patch(5), baseline, NOW).approved


def test_filters_and_within_or_across() -> None:
    assert decide(_patch(30), _baseline(), NOW) .compliance_level == "HIGH"
    assert not decide(_patch(30, severity="Moderate"), _baseline(), NOW).approved
    assert not decide(_patch(30, classification="Bugfix"), _baseline(), NOW).approved
    assert filters_match(_patch(1), {"PatchFilters": [{"Key": "PRODUCT", "Values": ["Redhat*"]}]})
    assert not filters_match(_patch(1), {"PatchFilters": [{"Key": "NOPE", "Values": ["*"]}]})
    windows = _patch(1, arch="", package="KB1", name="KB1", severity="Critical",
                     classification="SecurityUpdates")
    assert filters_match(windows, {"PatchFilters": [{"Key": "MSRC_SEVERITY", "Values": ["Critical"]}]})
    assert not filters_match(windows, {"PatchFilters": [{"Key": "SEVERITY", "Values": ["*"]}]})


def test_global_filters_exclude_before_rules() -> None:
    baseline = _baseline(0, GlobalFilters={"PatchFilters": [{"Key": "PRODUCT", "Values": ["AmazonLinux2"]}]})
    assert not decide(_patch(30), baseline, NOW).approved


def test_non_security_updates_need_enable_non_security() -> None:
    no_advisory = _patch(30, classification="", severity="")
    rule = {"PatchFilterGroup": {"PatchFilters": [{"Key": "PRODUCT", "Values": ["*"]}]},
            "ApproveAfterDays": 0}
    assert not decide(no_advisory, {"ApprovalRules": {"PatchRules": [rule]}}, NOW).approved
    rule["EnableNonSecurity"] = True
    assert decide(no_advisory, {"ApprovalRules": {"PatchRules": [rule]}}, NOW).approved


def test_approved_and_rejected_lists() -> None:
    young = _patch(0)
    assert not decide(young, _baseline(7), NOW).approved
    by_name = decide(young, _baseline(7, ApprovedPatches=["openssl-1.1.1k-12.el8.x86_64"],
                                      ApprovedPatchesComplianceLevel="CRITICAL"), NOW)
    assert by_name.approved and by_name.compliance_level == "CRITICAL"
    assert decide(young, _baseline(7, ApprovedPatches=["openssl-*.x86_64"]), NOW).approved
    assert decide(young, _baseline(7, ApprovedPatches=["CVE-2024-1234"]), NOW).approved
    assert not decide(young, _baseline(7, ApprovedPatches=["openssl-*-*.x86_64"]), NOW).approved
    rejected = decide(_patch(30), _baseline(0, RejectedPatches=["openssl-1.1.1k-12.el8.x86_64",
                                                                "x"]), NOW)
    assert rejected.rejected and not rejected.approved
    # CVE ids name approvals only, never rejections.
    assert not decide(_patch(30), _baseline(0, RejectedPatches=["CVE-2024-1234"]), NOW).rejected


def test_list_formats_per_package_manager() -> None:
    apt = _patch(1, release="", version="3.0.2-0ubuntu0.22.04.15", package="openssl.amd64", arch="amd64")
    assert listed(apt, ["openssl"], cves=True)
    assert not listed(apt, ["openssl-3.0.2-0ubuntu0.22.04.15.amd64"], cves=True)
    kb = _patch(1, arch="", package="KB5040437", name="KB5040437")
    assert listed(kb, ["kb5040437"], cves=False)
    assert not listed(kb, ["KB50404"], cves=False)


@pytest.mark.parametrize("group", list(PatchGroup))
def test_the_products_baselines_make_rings(group: PatchGroup) -> None:
    """The baselines fleetpatch creates approve more as the ring's delay shrinks."""
    approved = {}
    for os in (OsFamily.RHEL, OsFamily.WINDOWS, OsFamily.UBUNTU):
        baseline = BaselineSpec(os, group).request()
        cat = catalogue.build(os, NOW)
        approved[os] = {p.title for p in cat.patches if decide(p, baseline, NOW).approved}
        assert approved[os], f"{os} {group} approves nothing"
        for patch in cat.patches:
            if patch.title in approved[os] and os is not OsFamily.UBUNTU:
                assert patch.released + timedelta(days=group.approve_after_days) <= NOW


def test_catalogue_shapes_and_determinism() -> None:
    for os in OsFamily:
        cat = catalogue.build(os, NOW)
        assert cat.patches and cat.packages
        ages = {(NOW - p.released).days for p in cat.patches}
        assert min(ages) < 7 < max(ages), "release dates must straddle the rings"
        first = catalogue.initial_software(cat, "vm-1", NOW)
        assert first.to_json() == catalogue.initial_software(cat, "vm-1", NOW).to_json()
        assert catalogue.Installed.from_json(first.to_json()) == first
    rhel = catalogue.build(OsFamily.RHEL, NOW)
    kernel = rhel.versions("kernel.x86_64")
    assert [p.order for p in kernel] == [0, 1, 2, 3]
    assert kernel[-1].title == "kernel.x86_64:0:4.18.0-513.18.1.el8_9"
    ubuntu = catalogue.build(OsFamily.UBUNTU, NOW)
    assert ubuntu.versions("openssh-server.amd64")[1].title.startswith("openssh-server.amd64:1:8.9p1")

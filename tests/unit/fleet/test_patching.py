"""Scan/Install against the catalogue: states, override list semantics, reboot option."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clouds.aws.baselines import BaselineSpec
from contracts.providers import OsFamily, PatchGroup
from localclouds.fleet import catalogue, patching
from localclouds.fleet.override import OverrideListError, parse, split_s3_url

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)


def _setup(os: OsFamily, group: PatchGroup = PatchGroup.EARLY):
    cat = catalogue.build(os, NOW)
    installed = catalogue.Installed(os)
    if os is OsFamily.WINDOWS:
        installed.products.add(catalogue.PRODUCTS[os])
    else:
        for package in cat.packages:
            installed.packages[package] = cat.versions(package)[0].full_version
    return cat, installed, BaselineSpec(os, group).request()


def _states(items: list[patching.PatchItem]) -> dict[str, str]:
    return {i.patch.package: i.state for i in items}


def test_scan_reports_missing_then_install_installs_them_and_reboots() -> None:
    cat, installed, baseline = _setup(OsFamily.RHEL)
    before = patching.evaluate(cat, installed, baseline, NOW)
    missing = {i.patch.package: i.patch for i in before if i.state == "MISSING"}
    assert "kernel.x86_64" in missing and missing["kernel.x86_64"].order == 3  # newest approved
    assert _states(before)["bash.x86_64"] == "INSTALLED_OTHER"  # a Bugfix without severity
    targets = patching.install_targets(cat, installed, baseline, NOW, None)
    assert {t.package for t in targets} == set(missing)
    outcome = patching.apply_install(installed, targets, set(), "RebootIfNeeded")
    assert outcome.rebooted and not installed.pending_reboot
    after = patching.evaluate(cat, installed, baseline, NOW)
    assert "MISSING" not in _states(after).values()
    assert _states(after)["kernel.x86_64"] == "INSTALLED"
    numbers = patching.counts(after)
    assert numbers["InstalledCount"] == len(missing) and numbers["MissingCount"] == 0


def test_later_ring_waits_for_approve_after_days() -> None:
    cat, installed, early = _setup(OsFamily.RHEL, PatchGroup.EARLY)
    late = BaselineSpec(OsFamily.RHEL, PatchGroup.LATE).request()
    early_missing = {i.patch.title for i in patching.evaluate(cat, installed, early, NOW)
                     if i.state == "MISSING"}
    late_missing = {i.patch.title for i in patching.evaluate(cat, installed, late, NOW)
                    if i.state == "MISSING"}
    # The late ring gets the 40-day-old kernel, the early ring the 2-day-old one; sudo (3 days
    # old) is missing only for the early ring.
    assert "kernel.x86_64:0:4.18.0-513.9.1.el8_9" in late_missing
    assert "kernel.x86_64:0:4.18.0-513.18.1.el8_9" in early_missing
    assert "sudo.x86_64:0:1.9.5p2-1.el8_9.1" in early_missing - late_missing
    assert {t.split(":")[0] for t in late_missing} < {t.split(":")[0] for t in early_missing}


def test_no_reboot_leaves_patches_pending_until_a_reboot() -> None:
    cat, installed, baseline = _setup(OsFamily.WINDOWS)
    targets = patching.install_targets(cat, installed, baseline, NOW, None)
    assert targets and all(t.is_windows for t in targets)
    outcome = patching.apply_install(installed, targets, set(), "NoReboot")
    assert not outcome.rebooted
    items = patching.evaluate(cat, installed, baseline, NOW)
    pending = [i for i in items if i.state == "INSTALLED_PENDING_REBOOT"]
    assert len(pending) == len(targets) and not any(i.compliant for i in pending)
    # The next RebootIfNeeded install reboots even with nothing new to install.
    again = patching.apply_install(installed, [], set(), "RebootIfNeeded")
    assert again.rebooted
    assert "INSTALLED_PENDING_REBOOT" not in _states(patching.evaluate(cat, installed, baseline, NOW)).values()


def test_failed_install_is_reported_failed_and_retried() -> None:
    cat, installed, baseline = _setup(OsFamily.UBUNTU)
    targets = patching.install_targets(cat, installed, baseline, NOW, None)
    outcome = patching.apply_install(installed, targets, {"openssl.amd64"}, "RebootIfNeeded")
    assert [p.package for p in outcome.failed] == ["openssl.amd64"]
    items = patching.evaluate(cat, installed, baseline, NOW)
    assert _states(items)["openssl.amd64"] == "FAILED"
    assert patching.counts(items)["FailedCount"] == 1
    assert "openssl.amd64" in {t.package for t in patching.install_targets(cat, installed, baseline, NOW, None)}


def test_windows_states_not_applicable_and_available_security_updates() -> None:
    cat, installed, baseline = _setup(OsFamily.WINDOWS, PatchGroup.LATE)
    states = _states(patching.evaluate(cat, installed, baseline, NOW))
    assert states["KB5037422"] == "NOT_APPLICABLE"  # SQL Server is not installed
    assert states["KB5040437"] == "AVAILABLE_SECURITY_UPDATE"  # 3 days old: not yet approved
    assert states["KB5039227"] == "MISSING"


def test_rejected_patches_block_or_allow() -> None:
    cat, installed, baseline = _setup(OsFamily.RHEL)
    installed.packages["sudo.x86_64"] = "1.9.5p2-1.el8_9.1"
    baseline["RejectedPatches"] = ["sudo-1.9.5p2-1.el8_9.1.x86_64", "curl-*.x86_64"]
    states = _states(patching.evaluate(cat, installed, baseline, NOW))
    assert states["sudo.x86_64"] == "INSTALLED_OTHER"  # ALLOW_AS_DEPENDENCY
    assert states["curl.x86_64"] == "INSTALLED_OTHER"  # its update is rejected: not missing
    baseline["RejectedPatchesAction"] = "BLOCK"
    assert _states(patching.evaluate(cat, installed, baseline, NOW))["sudo.x86_64"] == "INSTALLED_REJECTED"
    targets = patching.install_targets(cat, installed, baseline, NOW, None)
    assert "curl.x86_64" not in {t.package for t in targets}


OVERRIDE = b"""
patches:
  - id: 'kernel.x86_64'
    title: '*0:4.18.0-513.9.1.*'
  - id: 'python3-*'
  - id: 'httpd.x86_64'
    classification: ignored
"""


def test_override_list_installs_exactly_the_listed_versions() -> None:
    cat, installed, baseline = _setup(OsFamily.RHEL, PatchGroup.LATE)
    entries = parse(OVERRIDE)
    targets = patching.install_targets(cat, installed, baseline, NOW, entries)
    # kernel: the listed (older) version, not the newest; python3-libs although the baseline does
    # not approve it (no advisory); httpd because it is installed; nothing else.
    assert sorted(t.title for t in targets) == [
        "httpd.x86_64:0:2.4.37-62.el8_9.2",
        "kernel.x86_64:0:4.18.0-513.9.1.el8_9",
        "python3-libs.x86_64:0:3.6.8-56.el8_9.1",
    ]
    del installed.packages["httpd.x86_64"]
    assert "httpd.x86_64" not in {t.package for t in patching.install_targets(cat, installed, baseline, NOW, entries)}
    patching.apply_install(installed, targets[:1], set(), "RebootIfNeeded")
    # Scan ignores the list: compliance is still the baseline's.
    assert _states(patching.evaluate(cat, installed, baseline, NOW))["python3-libs.x86_64"] == "INSTALLED_OTHER"


def test_override_list_for_ubuntu_and_windows() -> None:
    cat, installed, baseline = _setup(OsFamily.UBUNTU)
    entries = parse(b'{"patches": [{"id": "openssh-server.amd64", "title": "1:8.9p1-3ubuntu0.22.04.6"},'
                    b' {"id": "vim.*", "title": "*2:8.2.3995-1ubuntu0.22.04.16"}]}')
    titles = [t.title for t in patching.install_targets(cat, installed, baseline, NOW, entries)]
    assert titles == ["openssh-server.amd64:1:8.9p1-3ubuntu0.22.04.6", "vim.amd64:2:8.2.3995-1ubuntu0.22.04.16"]
    cat, installed, baseline = _setup(OsFamily.WINDOWS, PatchGroup.LATE)
    entries = parse(b"patches:\n  - id: kb5040437\n    title: anything\n  - id: KB5037422\n")
    # KB5037422 (SQL Server) does not apply; KB5040437 is installed although not yet approved.
    assert [t.package for t in patching.install_targets(cat, installed, baseline, NOW, entries)] == ["KB5040437"]


@pytest.mark.parametrize("bad", [b"[1, 2]", b"patches: 3", b"patches:\n  - title: x\n", b"{", b"\xff\xfe",
                                 b"patches:\n  - id: a\n    title: [1]\n"])
def test_bad_override_lists_are_refused(bad: bytes) -> None:
    with pytest.raises(OverrideListError):
        parse(bad)


def test_s3_urls() -> None:
    assert split_s3_url("s3://bucket/dir/list.yaml") == ("bucket", "dir/list.yaml")
    with pytest.raises(OverrideListError):
        split_s3_url("s3://bucket")


def test_compliance_items_shape() -> None:
    cat, installed, baseline = _setup(OsFamily.RHEL)
    items = patching.evaluate(cat, installed, baseline, NOW)
    rows = patching.compliance_items(items, {})
    missing = next(r for r in rows if r["Id"] == "sudo.x86_64")
    assert missing["Status"] == "NON_COMPLIANT" and missing["Severity"] == "HIGH"
    assert missing["Details"]["PatchState"] == "MISSING" and missing["Details"]["CVEIds"].startswith("CVE-")
    numbers = patching.counts(items)
    assert numbers["MissingCount"] == sum(r["Details"]["PatchState"] == "MISSING" for r in rows)
    assert numbers["SecurityNonCompliantCount"] + numbers["OtherNonCompliantCount"] + numbers["CriticalNonCompliantCount"] == sum(
        r["Status"] == "NON_COMPLIANT" for r in rows)


def test_the_catalogue_carries_real_cves_and_severities() -> None:
    """Missing patches name the real CVEs they fix, with a severity, on every OS family."""
    expected = {OsFamily.RHEL: ("kernel.x86_64", "CVE-2024-1086", "Important"),
                OsFamily.UBUNTU: ("sudo.amd64", "CVE-2023-22809", "Critical"),
                OsFamily.WINDOWS: ("KB5040437", "CVE-2024-38080", "Critical")}
    for os, (package, cve, severity) in expected.items():
        cat, installed, baseline = _setup(os)
        rows = {r["Id"]: r for r in patching.compliance_items(
            patching.evaluate(cat, installed, baseline, NOW), {})}
        assert cve in rows[package]["Details"]["CVEIds"].split(","), (os, rows[package])
        assert rows[package]["Details"]["PatchSeverity"] == severity
    # Every CVE id is well formed, and only security updates carry one.
    for os in OsFamily:
        for patch in catalogue.build(os, NOW).patches:
            assert all(c.startswith("CVE-20") and c.count("-") == 2 for c in patch.cves)
            assert not patch.cves or patch.security

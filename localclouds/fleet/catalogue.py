"""A synthetic patch catalogue per OS family, and each simulated VM's installed software.

Linux: packages (name, architecture, epoch, version, release) each with a base version and later
updates; Windows: KB updates. Every update has a release date relative to "now" (days ago), a
classification, a severity (SEVERITY on yum systems, MSRC_SEVERITY on Windows, Ubuntu's CVE
priority on APT systems), an APT priority and section on Ubuntu/Debian, a product, whether
installing it needs a reboot, and the real CVE ids it fixes (``advisories``). The dates are
spread so that the rings' approve-after days (0, 7, 14) approve different sets.

Everything is deterministic: a VM's installed set is seeded by its name.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts.providers import OsFamily
from localclouds.fleet import advisories

YUM_FAMILIES = {OsFamily.CENTOS: "el7", OsFamily.RHEL: "el8_9", OsFamily.ORACLE: "el8",
                OsFamily.AMAZON_LINUX: "amzn1", OsFamily.AMAZON_LINUX_2: "amzn2"}
APT_FAMILIES = {OsFamily.UBUNTU: "ubuntu", OsFamily.DEBIAN: "debian"}
PRODUCTS = {OsFamily.CENTOS: "CentOS7.9", OsFamily.RHEL: "RedhatEnterpriseLinux8.9",
            OsFamily.ORACLE: "OracleLinux8.9", OsFamily.AMAZON_LINUX: "AmazonLinux2018.03",
            OsFamily.AMAZON_LINUX_2: "AmazonLinux2", OsFamily.UBUNTU: "Ubuntu22.04",
            OsFamily.DEBIAN: "Debian12", OsFamily.WINDOWS: "WindowsServer2022"}


@dataclass(frozen=True)
class Patch:
    """One installable version (Linux) or one update (Windows)."""

    package: str  # Linux: name.arch, the compliance item id; Windows: the KB id
    name: str
    arch: str
    epoch: str
    version: str
    release: str  # "" on APT systems, whose version is one string
    released: datetime
    classification: str  # "" on Linux: no advisory (a non-security repository update)
    severity: str
    priority: str = ""
    section: str = ""
    product: str = ""
    reboot: bool = False
    cves: tuple[str, ...] = ()
    kb_title: str = ""
    order: int = 0  # position among the package's versions; 0 is the base version

    @property
    def is_windows(self) -> bool:
        return self.arch == ""

    @property
    def full_version(self) -> str:
        return f"{self.version}-{self.release}" if self.release else self.version

    @property
    def title(self) -> str:
        """Windows: the update's title; Linux: name.arch:epoch:version-release (APT: name.arch:version)."""
        if self.is_windows:
            return self.kb_title
        if self.release:
            return f"{self.package}:{self.epoch}:{self.full_version}"
        return f"{self.package}:{self.full_version}"

    @property
    def security(self) -> bool:
        return self.classification in ("Security", "SecurityUpdates")


@dataclass(frozen=True)
class Catalogue:
    os: OsFamily
    patches: tuple[Patch, ...]

    def versions(self, package: str) -> list[Patch]:
        """Every version of a package (Linux) or the one KB (Windows), oldest first."""
        return sorted((p for p in self.patches if p.package == package), key=lambda p: p.order)

    @property
    def packages(self) -> list[str]:
        return sorted({p.package for p in self.patches})

    def find(self, package: str, full_version: str) -> Patch | None:
        return next((p for p in self.patches
                     if p.package == package and p.full_version == full_version), None)


# (name, arch, epoch, base version-release, updates, optional). Update: (version-release,
# days ago, classification, severity, reboot). "{d}" is the distribution tag.
_YUM = (
    ("kernel", "x86_64", "0", "4.18.0-513.5.1.{d}", (
        ("4.18.0-513.9.1.{d}", 40, "Security", "Important", True),
        ("4.18.0-513.11.1.{d}", 10, "Security", "Critical", True),
        ("4.18.0-513.18.1.{d}", 2, "Security", "Important", True)), False),
    ("openssl", "x86_64", "1", "1.1.1k-9.{d}", (
        ("1.1.1k-12.{d}", 5, "Security", "Important", False),), False),
    ("glibc", "x86_64", "0", "2.28-236.{d}", (
        ("2.28-236.{d}.7", 16, "Security", "Moderate", False),
        ("2.28-236.{d}.9", 8, "Bugfix", "", False)), False),
    ("bash", "x86_64", "0", "4.4.20-4.{d}", (("4.4.20-5.{d}", 60, "Bugfix", "", False),), False),
    ("curl", "x86_64", "0", "7.61.1-33.{d}", (
        ("7.61.1-34.{d}", 12, "Security", "Important", False),), False),
    ("sudo", "x86_64", "0", "1.9.5p2-1.{d}", (
        ("1.9.5p2-1.{d}.1", 3, "Security", "Critical", False),), False),
    ("systemd", "x86_64", "0", "239-78.{d}", (("239-78.{d}.3", 20, "Bugfix", "Important", True),),
     False),
    ("openssh-server", "x86_64", "0", "8.0p1-19.{d}", (
        ("8.0p1-19.{d}.2", 9, "Security", "Important", False),), False),
    ("tzdata", "noarch", "0", "2023c-1.{d}", (("2024a-1.{d}", 25, "Enhancement", "", False),),
     False),
    ("vim-minimal", "x86_64", "2", "8.0.1763-19.{d}", (
        ("8.0.1763-19.{d}.4", 1, "Security", "Low", False),), False),
    ("python3-libs", "x86_64", "0", "3.6.8-56.{d}", (("3.6.8-56.{d}.1", 6, "", "", False),), False),
    ("httpd", "x86_64", "0", "2.4.37-62.{d}", (
        ("2.4.37-62.{d}.2", 4, "Security", "Important", False),), True),
    ("bind-libs", "x86_64", "32", "9.11.36-11.{d}", (
        ("9.11.36-11.{d}.1", 30, "Security", "Important", False),), True),
)
# (name, arch, base version, updates, priority, section, optional). Update: (version, days ago,
# security?, reboot). "{u}" is the distribution's revision suffix.
_APT = (
    ("linux-image-generic", "amd64", "5.15.0.91{u}1", (
        ("5.15.0.94{u}2", 11, True, True), ("5.15.0.97{u}3", 2, True, True)), "Optional", "kernel",
     False),
    ("openssl", "amd64", "3.0.2-0{u}10", (("3.0.2-0{u}15", 5, True, False),), "Important", "utils",
     False),
    ("libc6", "amd64", "2.35-0{u}3", (("2.35-0{u}5", 17, True, False),
                                      ("2.35-0{u}6", 8, False, False)), "Required", "libs", False),
    ("bash", "amd64", "5.1-6{u}1", (("5.1-6{u}2", 45, False, False),), "Required", "shells", False),
    ("curl", "amd64", "7.81.0-1{u}14", (("7.81.0-1{u}15", 12, True, False),), "Optional", "web",
     False),
    ("sudo", "amd64", "1.9.9-1{u}2", (("1.9.9-1{u}4", 3, True, False),), "Important", "admin", False),
    ("systemd", "amd64", "249.11-0{u}21", (("249.11-0{u}22", 20, False, True),), "Important",
     "admin", False),
    ("openssh-server", "amd64", "1:8.9p1-3{u}4", (("1:8.9p1-3{u}6", 9, True, False),), "Optional",
     "net", False),
    ("tzdata", "all", "2023c-0{u}0", (("2024a-0{u}0", 25, False, False),), "Required",
     "localization", False),
    ("vim", "amd64", "2:8.2.3995-1{u}15", (("2:8.2.3995-1{u}16", 1, True, False),), "Optional",
     "editors", False),
    ("apache2", "amd64", "2.4.52-1{u}16", (("2.4.52-1{u}18", 4, True, False),), "Optional", "httpd",
     True),
    ("bind9-libs", "amd64", "1:9.18.18-0{u}1", (("1:9.18.18-0{u}2", 30, True, False),), "Standard",
     "libs", True),
)
# (KB, title, classification, MSRC severity, days ago, reboot, applicable)
_WINDOWS = (
    ("KB5036909", "2024-04 Cumulative Update for Microsoft server operating system version 21H2 "
     "for x64-based Systems", "SecurityUpdates", "Critical", 95, True, True),
    ("KB5039227", "2024-06 Cumulative Update for Microsoft server operating system version 21H2 "
     "for x64-based Systems", "SecurityUpdates", "Critical", 33, True, True),
    ("KB5040437", "2024-07 Cumulative Update for Microsoft server operating system version 21H2 "
     "for x64-based Systems", "SecurityUpdates", "Critical", 3, True, True),
    ("KB5040571", "2024-07 Cumulative Update for .NET Framework 3.5, 4.8 and 4.8.1",
     "SecurityUpdates", "Important", 10, False, True),
    ("KB5041014", "2024-07 Servicing Stack Update for Microsoft server operating system",
     "CriticalUpdates", "Unspecified", 8, False, True),
    ("KB890830", "Windows Malicious Software Removal Tool x64 - v5.126", "UpdateRollups",
     "Unspecified", 15, False, True),
    ("KB2267602", "Security Intelligence Update for Microsoft Defender Antivirus",
     "DefinitionUpdates", "Unspecified", 1, False, True),
    ("KB5040438", "2024-07 Cumulative Update Preview for Microsoft server operating system",
     "Updates", "Unspecified", 6, True, True),
    ("KB5037422", "Security Update for SQL Server 2019 RTM CU", "SecurityUpdates", "Important", 20,
     False, False),
    ("KB5039886", "2024-06 Security Update for Microsoft Edge", "SecurityUpdates", "Moderate", 18,
     False, True),
)


def build(os: OsFamily, now: datetime) -> Catalogue:
    """The catalogue of ``os`` with release dates counted back from ``now``."""
    if os is OsFamily.WINDOWS:
        return Catalogue(os, tuple(_windows(now)))
    if os in APT_FAMILIES:
        return Catalogue(os, tuple(_apt(os, now)))
    return Catalogue(os, tuple(_yum(os, now)))


def _yum(os: OsFamily, now: datetime) -> list[Patch]:
    tag, product, patches = YUM_FAMILIES[os], PRODUCTS[os], []
    for name, arch, epoch, base, updates, _ in _YUM:
        versions = [(base, 400, "", "", False), *updates]
        for order, (full, days, classification, severity, reboot) in enumerate(versions):
            version, release = full.format(d=tag).split("-", 1)
            cves = advisories.fixed_by(advisories.YUM_CVES, name, order) if (
                classification == "Security") else ()
            patches.append(Patch(f"{name}.{arch}", name, arch, epoch, version, release,
                                 now - timedelta(days=days), classification, severity,
                                 product=product, reboot=reboot, cves=cves, order=order))
    return patches


def _apt(os: OsFamily, now: datetime) -> list[Patch]:
    suffix = "ubuntu0.22.04." if os is OsFamily.UBUNTU else "+deb12u"
    product, patches = PRODUCTS[os], []
    for name, arch, base, updates, priority, section, _ in _APT:
        versions = [(base, 400, False, False), *updates]
        for order, (version, days, security, reboot) in enumerate(versions):
            # APT versions carry their epoch ("1:8.9p1-3..."), as APT titles show them.
            epoch = version.split(":", 1)[0] if ":" in version else "0"
            key = (name, order)
            patches.append(Patch(f"{name}.{arch}", name, arch, epoch,
                                 version.format(u=suffix), "", now - timedelta(days=days),
                                 "Security" if security else "",
                                 advisories.APT_SEVERITY.get(key, "") if security else "",
                                 priority=priority, section=section, product=product,
                                 reboot=reboot, order=order,
                                 cves=advisories.fixed_by(advisories.APT_CVES, name, order)
                                 if security else ()))
    return patches


def _windows(now: datetime) -> list[Patch]:
    return [Patch(kb, kb, "", "", "", "", now - timedelta(days=days), classification, severity,
                  product=PRODUCTS[OsFamily.WINDOWS] if applicable else "SQLServer2019",
                  reboot=reboot, kb_title=f"{title} ({kb})", cves=advisories.WINDOWS_CVES.get(kb, ()))
            for kb, title, classification, severity, days, reboot, applicable in _WINDOWS]


@dataclass
class Installed:
    """A VM's software: Linux package -> installed full version; Windows: installed KB ids.

    ``pending_reboot`` holds what was installed since the last reboot by an Install without
    reboot; ``failed`` what the last Install failed to install.
    """

    os: OsFamily
    packages: dict[str, str] = field(default_factory=dict)
    kbs: set[str] = field(default_factory=set)
    pending_reboot: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    products: set[str] = field(default_factory=set)

    def has(self, patch: Patch) -> bool:
        if patch.is_windows:
            return patch.package in self.kbs
        return self.packages.get(patch.package) == patch.full_version

    def applicable(self, patch: Patch) -> bool:
        """Is the patch's software on this VM (Linux: the package; Windows: the product)?"""
        if patch.is_windows:
            return patch.product in self.products
        return patch.package in self.packages

    def to_json(self) -> dict[str, object]:
        return {"os": self.os.value, "packages": self.packages, "kbs": sorted(self.kbs),
                "pending_reboot": sorted(self.pending_reboot), "failed": sorted(self.failed),
                "products": sorted(self.products)}

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> Installed:
        return cls(OsFamily(str(doc["os"])), dict(doc.get("packages") or {}),  # type: ignore[arg-type]
                   set(doc.get("kbs") or []), set(doc.get("pending_reboot") or []),  # type: ignore[arg-type]
                   set(doc.get("failed") or []), set(doc.get("products") or []))  # type: ignore[arg-type]


def initial_software(catalogue: Catalogue, seed: str, now: datetime) -> Installed:
    """What a freshly booted VM has: base versions, some optional packages, some older updates."""
    rng = random.Random(seed)
    installed = Installed(catalogue.os)
    if catalogue.os is OsFamily.WINDOWS:
        installed.products.add(PRODUCTS[OsFamily.WINDOWS])
        for patch in catalogue.patches:
            age = (now - patch.released).days
            if patch.product in installed.products and age >= 30 and rng.random() < 0.7:
                installed.kbs.add(patch.package)
        return installed
    optional = {f"{row[0]}.{row[1]}" for row in (*_YUM, *_APT) if row[-1]}
    for package in catalogue.packages:
        if package in optional and rng.random() < 0.5:
            continue
        versions = catalogue.versions(package)
        chosen = versions[1] if len(versions) > 2 and rng.random() < 0.3 else versions[0]
        installed.packages[package] = chosen.full_version
    return installed

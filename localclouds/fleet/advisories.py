"""The advisories behind the synthetic catalogue: which real CVEs each update fixes.

The packages and versions are synthetic, the CVE ids are real, well-known ones of the same
software (openssl, glibc, sudo, curl, OpenSSH, the Linux kernel, Apache httpd, BIND, vim and
Windows' monthly cumulative updates), so that a CVE look-up of the local default finds what an
operator would search for. Keys are (package name, version order): order 1 is the package's first
update after its base version, 2 the second, and so on; Windows updates are keyed by KB id. A Linux version fixes its own advisory's CVEs and every earlier update's.

``APT_SEVERITY`` gives Ubuntu/Debian security updates the priority Ubuntu's CVE tracker uses
(Critical, High, Medium, Low); their baselines approve by APT priority, never by this.
"""

from __future__ import annotations


def fixed_by(table: dict[tuple[str, int], tuple[str, ...]], package: str, order: int
             ) -> tuple[str, ...]:
    """The CVEs a Linux package version fixes: its own advisory's and every earlier update's
    (a newer version supersedes the older ones, as yum and APT updates do)."""
    found: list[str] = []
    for earlier in range(1, order + 1):
        found += [c for c in table.get((package, earlier), ()) if c not in found]
    return tuple(found)

#: yum systems (CentOS, RHEL, Oracle Linux, Amazon Linux): (package, update order) -> CVE ids.
YUM_CVES: dict[tuple[str, int], tuple[str, ...]] = {
    ("kernel", 1): ("CVE-2023-0386", "CVE-2023-32233"),  # OverlayFS setuid copy-up; nf_tables UAF
    ("kernel", 2): ("CVE-2024-1086",),  # nf_tables use-after-free, exploited in the wild
    ("kernel", 3): ("CVE-2024-26581", "CVE-2023-6817"),
    ("openssl", 1): ("CVE-2023-0286", "CVE-2023-0215"),  # X.400 type confusion; BIO UAF
    ("glibc", 1): ("CVE-2023-4911", "CVE-2023-6246"),  # Looney Tunables; syslog heap overflow
    ("curl", 1): ("CVE-2023-38545", "CVE-2023-38546"),  # SOCKS5 heap overflow; cookie injection
    ("sudo", 1): ("CVE-2023-22809", "CVE-2021-3156"),  # sudoedit EDITOR; Baron Samedit
    ("openssh-server", 1): ("CVE-2023-48795", "CVE-2023-51385"),  # Terrapin; ProxyCommand
    ("vim-minimal", 1): ("CVE-2023-4781", "CVE-2023-5344"),
    ("httpd", 1): ("CVE-2023-25690", "CVE-2023-27522"),  # mod_proxy request splitting
    ("bind-libs", 1): ("CVE-2023-50387", "CVE-2023-50868"),  # KeyTrap; NSEC3 closest encloser
}

#: APT systems (Ubuntu, Debian): (package, update order) -> CVE ids.
APT_CVES: dict[tuple[str, int], tuple[str, ...]] = {
    ("linux-image-generic", 1): ("CVE-2023-0386", "CVE-2023-32233"),
    ("linux-image-generic", 2): ("CVE-2024-1086",),
    ("openssl", 1): ("CVE-2023-5678", "CVE-2024-0727"),
    ("libc6", 1): ("CVE-2023-4911", "CVE-2023-6246"),
    ("curl", 1): ("CVE-2023-38545", "CVE-2023-38546"),
    ("sudo", 1): ("CVE-2023-22809", "CVE-2023-28486"),
    ("openssh-server", 1): ("CVE-2024-6387", "CVE-2023-48795"),  # regreSSHion; Terrapin
    ("vim", 1): ("CVE-2023-4781", "CVE-2023-5344"),
    ("apache2", 1): ("CVE-2023-25690", "CVE-2024-27316"),
    ("bind9-libs", 1): ("CVE-2023-50387", "CVE-2023-50868"),
}

#: APT security updates: (package, update order) -> Ubuntu CVE priority.
APT_SEVERITY: dict[tuple[str, int], str] = {
    ("linux-image-generic", 1): "High",
    ("linux-image-generic", 2): "Critical",
    ("openssl", 1): "Medium",
    ("libc6", 1): "High",
    ("curl", 1): "High",
    ("sudo", 1): "Critical",
    ("openssh-server", 1): "Critical",
    ("vim", 1): "Low",
    ("apache2", 1): "Medium",
    ("bind9-libs", 1): "High",
}

#: Windows: KB id -> CVE ids it fixes.
WINDOWS_CVES: dict[str, tuple[str, ...]] = {
    "KB5036909": ("CVE-2024-26234", "CVE-2024-29988"),  # 2024-04: proxy driver spoofing
    "KB5039227": ("CVE-2024-30080", "CVE-2024-30078"),  # 2024-06: MSMQ RCE; Wi-Fi driver RCE
    "KB5040437": ("CVE-2024-38080", "CVE-2024-38112", "CVE-2024-38077"),  # Hyper-V; MSHTML; RDL
    "KB5040571": ("CVE-2024-38095", "CVE-2024-35264"),  # .NET denial of service; HTTP/3 RCE
    "KB5037422": ("CVE-2024-28906", "CVE-2024-29985"),  # SQL Server OLE DB provider RCE
    "KB5039886": ("CVE-2024-5274",),  # Edge (Chromium V8) type confusion, exploited
}

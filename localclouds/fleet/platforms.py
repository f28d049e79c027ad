"""What each simulated OS looks like: its /etc/os-release stand-in and what its agent reports.

Windows VMs have no PowerShell here: they run the bash startup script with an os-release
stand-in whose ``ID`` is ``windows`` (a file no real Windows has), and their agent reports the
Windows platform fields a real Windows agent sends.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.providers import OsFamily


@dataclass(frozen=True)
class Platform:
    os: OsFamily
    release_id: str  # os-release ID
    version_id: str  # os-release VERSION_ID
    pretty_name: str
    platform_name: str  # UpdateInstanceInformation PlatformName
    platform_type: str  # Linux | Windows
    platform_version: str

    def os_release(self) -> str:
        return (f'NAME="{self.pretty_name.split(" ")[0]}"\nID={self.release_id}\n'
                f'VERSION_ID="{self.version_id}"\nPRETTY_NAME="{self.pretty_name}"\n')


PLATFORMS: dict[OsFamily, Platform] = {p.os: p for p in (
    Platform(OsFamily.WINDOWS, "windows", "2022", "Windows Server 2022 (fleetpatch stand-in)",
             "Microsoft Windows Server 2022 Datacenter", "Windows", "10.0.20348"),
    Platform(OsFamily.UBUNTU, "ubuntu", "22.04", "Ubuntu 22.04.4 LTS", "Ubuntu", "Linux", "22.04"),
    Platform(OsFamily.DEBIAN, "debian", "12", "Debian GNU/Linux 12 (bookworm)",
             "Debian GNU/Linux", "Linux", "12"),
    Platform(OsFamily.CENTOS, "centos", "7", "CentOS Linux 7 (Core)", "CentOS Linux", "Linux",
             "7.9.2009"),
    Platform(OsFamily.RHEL, "rhel", "8.9", "Red Hat Enterprise Linux 8.9 (Ootpa)",
             "Red Hat Enterprise Linux", "Linux", "8.9"),
    Platform(OsFamily.ORACLE, "ol", "8.9", "Oracle Linux Server 8.9", "Oracle Linux Server",
             "Linux", "8.9"),
    Platform(OsFamily.AMAZON_LINUX, "amzn", "2018.03", "Amazon Linux AMI 2018.03",
             "Amazon Linux AMI", "Linux", "2018.03"),
    Platform(OsFamily.AMAZON_LINUX_2, "amzn", "2", "Amazon Linux 2", "Amazon Linux", "Linux", "2"),
)}

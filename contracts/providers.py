"""The clouds fleetpatch enrolls from, the worker roles, patch groups and operating systems."""

from __future__ import annotations

from enum import StrEnum


class Provider(StrEnum):
    """A customer cloud a VM runs in, as named on the registration API."""

    GCP = "gcp"
    AZURE = "azure"
    AWS = "aws"  # EC2
    VMWARE = "vmware"


class WorkerRole(StrEnum):
    """A worker process kind; each polls its own task queue and holds only its own credentials."""

    ORCHESTRATOR = "orchestrator"
    AWS = "aws"  # AWS control plane: Organizations, STS, IAM, SSM, S3
    GCP = "gcp"
    AZURE = "azure"
    VMWARE = "vmware"
    EC2 = "ec2"


#: The worker role that verifies identities and reads VM metadata for each provider.
PROVIDER_ROLE: dict[Provider, WorkerRole] = {
    Provider.GCP: WorkerRole.GCP,
    Provider.AZURE: WorkerRole.AZURE,
    Provider.AWS: WorkerRole.EC2,
    Provider.VMWARE: WorkerRole.VMWARE,
}


class PatchGroup(StrEnum):
    """Patch rings. Approval delay in days: early 0, on-time 7, late 14."""

    EARLY = "early"
    ON_TIME = "on-time"
    LATE = "late"

    @property
    def approve_after_days(self) -> int:
        return {PatchGroup.EARLY: 0, PatchGroup.ON_TIME: 7, PatchGroup.LATE: 14}[self]


class OsFamily(StrEnum):
    """Operating systems fleetpatch keeps a patch baseline for, with their SSM names."""

    WINDOWS = "windows"
    UBUNTU = "ubuntu"
    DEBIAN = "debian"
    CENTOS = "centos"
    RHEL = "rhel"
    ORACLE = "oracle"
    AMAZON_LINUX = "amazon-linux"
    AMAZON_LINUX_2 = "amazon-linux-2"

    @property
    def ssm_operating_system(self) -> str:
        return _SSM_OS[self]


#: OSes whose SSM patch baselines cannot delay approval by days (SSM has no ApproveAfterDays for
#: Ubuntu and Debian): their baselines approve on release, and the rings' delay is held by the
#: patch train, so a later ring never installs from their baseline.
NO_APPROVAL_DELAY: frozenset[OsFamily] = frozenset({OsFamily.UBUNTU, OsFamily.DEBIAN})

_SSM_OS = {
    OsFamily.WINDOWS: "WINDOWS",
    OsFamily.UBUNTU: "UBUNTU",
    OsFamily.DEBIAN: "DEBIAN",
    OsFamily.CENTOS: "CENTOS",
    OsFamily.RHEL: "REDHAT_ENTERPRISE_LINUX",
    OsFamily.ORACLE: "ORACLE_LINUX",
    OsFamily.AMAZON_LINUX: "AMAZON_LINUX",
    OsFamily.AMAZON_LINUX_2: "AMAZON_LINUX_2",
}

"""One task queue per worker role."""

from __future__ import annotations

from contracts.providers import PROVIDER_ROLE, Provider, WorkerRole

ORCHESTRATOR = "fleetpatch"
AWS = "fleetpatch-aws"
GCP = "fleetpatch-gcp"
AZURE = "fleetpatch-azure"
VMWARE = "fleetpatch-vmware"
EC2 = "fleetpatch-ec2"

BY_ROLE: dict[WorkerRole, str] = {
    WorkerRole.ORCHESTRATOR: ORCHESTRATOR,
    WorkerRole.AWS: AWS,
    WorkerRole.GCP: GCP,
    WorkerRole.AZURE: AZURE,
    WorkerRole.VMWARE: VMWARE,
    WorkerRole.EC2: EC2,
}


def for_role(role: WorkerRole, prefix: str = "") -> str:
    """The task queue of a role. ``prefix`` isolates test runs that share one server."""
    return prefix + BY_ROLE[role]


def for_provider(provider: Provider, prefix: str = "") -> str:
    """The task queue that verifies identities and reads VM metadata for ``provider``."""
    return for_role(PROVIDER_ROLE[provider], prefix)

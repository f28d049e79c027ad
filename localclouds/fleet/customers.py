"""The demo customers of the simulated fleet and where their VMs run (pure functions).

Each of K customers owns one GCP project, one Azure subscription and one AWS account (EC2, with
a cross-account role fleetpatch assumes); the one local vCenter belongs to the first customer.
Everything is derived from the customer's index, so every run (and ``fleetpatch simulate``,
which links the same accounts through the admin API) agrees on the same names.

VMs are spread round-robin over providers, customers and the eight OS families, and labelled for
patching; every third VM asks for the ``early`` ring and every fifth for ``late`` (the rest take
the link's default, ``on-time``). Every sixth VM that runs Linux outside EC2 boots without an SSM
agent (``agent_installed``), so its startup script installs one (EC2 images ship the agent, and
simulated Windows VMs run the bash script, which installs only Linux packages).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from contracts.providers import OsFamily, PatchGroup, Provider

NAMES = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell")
_NAMESPACE = uuid.UUID("6f7c1a52-5a0b-4f9e-9a51-2f0c3b7f1e10")
PATCHING_LABEL = "rackspace-addon-patching"
PATCH_GROUP_LABEL = "rackspace-addon-patching-patchgroup"
AWS_ROLE_NAME = "FleetpatchAccess"
AZURE_RESOURCE_GROUP = "fleetpatch-demo"
GCP_ZONE = "us-east1-b"
AZURE_LOCATION = "eastus"
PROVIDER_ORDER = (Provider.GCP, Provider.AZURE, Provider.AWS, Provider.VMWARE)
OS_ORDER = tuple(OsFamily)


@dataclass(frozen=True)
class Customer:
    index: int
    name: str
    gcp_project: str
    azure_subscription: str
    aws_account: str
    owns_vcenter: bool

    def cloud_account(self, provider: Provider, vcenter_id: str) -> str:
        return {
            Provider.GCP: self.gcp_project,
            Provider.AZURE: self.azure_subscription,
            Provider.AWS: self.aws_account,
            Provider.VMWARE: vcenter_id,
        }[provider]


def customer(index: int) -> Customer:
    """The ``index``-th demo customer (0-based)."""
    name = NAMES[index] if index < len(NAMES) else f"customer{index + 1}"
    return Customer(
        index=index,
        name=name,
        gcp_project=f"{name}-demo-{index + 1}",
        azure_subscription=str(uuid.uuid5(_NAMESPACE, f"azure/{name}")),
        aws_account=f"{210000000000 + 1000 * (index + 1)}",
        owns_vcenter=index == 0,
    )


def customers(count: int) -> list[Customer]:
    if not 1 <= count <= 100:
        raise ValueError("customers must be between 1 and 100")
    return [customer(i) for i in range(count)]


def links(count: int, vcenter_id: str, vcenter_public_key: str | None) -> list[dict[str, object]]:
    """The admin-API link bodies (``POST /v1/admin/links``) that let these customers enroll."""
    bodies: list[dict[str, object]] = []
    for c in customers(count):
        bodies.append({"provider": "gcp", "cloud_account": c.gcp_project, "customer": c.name})
        bodies.append({"provider": "azure", "cloud_account": c.azure_subscription,
                       "customer": c.name})
        bodies.append({"provider": "aws", "cloud_account": c.aws_account, "customer": c.name,
                       "role_name": AWS_ROLE_NAME})
        if c.owns_vcenter and vcenter_public_key:
            bodies.append({"provider": "vmware", "cloud_account": vcenter_id, "customer": c.name,
                           "vcenter_public_keys": [vcenter_public_key]})
    return bodies


@dataclass(frozen=True)
class VmPlan:
    """One VM to boot: where, for whom, which OS and labels."""

    number: int
    provider: Provider
    customer: Customer
    os: OsFamily
    patch_group: PatchGroup | None  # None: the link's default
    agent_installed: bool = True  # False: the startup script must install the SSM agent

    @property
    def name(self) -> str:
        return f"{self.customer.name}-{self.provider.value}-{self.number:04d}"

    @property
    def labels(self) -> dict[str, str]:
        labels = {PATCHING_LABEL: "true"}
        if self.patch_group is not None:
            labels[PATCH_GROUP_LABEL] = self.patch_group.value
        return labels


def can_lack_agent(provider: Provider, os: OsFamily) -> bool:
    """Whether a VM may boot without an SSM agent (its script then installs one)."""
    return provider is not Provider.AWS and os is not OsFamily.WINDOWS


def plan(first_number: int, count: int, customer_count: int,
         providers: tuple[Provider, ...] = PROVIDER_ORDER, without_agent: bool | None = None) -> list[VmPlan]:
    """``count`` VMs numbered from ``first_number``; the vCenter's VMs go to its owner.
    ``without_agent``: True boots every VM that can lack an agent without one, False none, None
    every sixth."""
    every = customers(customer_count)
    owner = next(c for c in every if c.owns_vcenter)
    plans = []
    for offset in range(count):
        number = first_number + offset
        provider = providers[number % len(providers)]
        chosen = owner if provider is Provider.VMWARE else every[(number // len(providers))
                                                                  % len(every)]
        group = (PatchGroup.EARLY if number % 3 == 0 else
                 PatchGroup.LATE if number % 5 == 0 else None)
        # Offset by the round so that every provider, not only the fleet, sees all eight OSes.
        os = OS_ORDER[(number + number // len(providers)) % len(OS_ORDER)]
        lacks = number % 6 == 5 if without_agent is None else without_agent
        plans.append(VmPlan(number, provider, chosen, os, group, not (lacks and can_lack_agent(provider, os))))
    return plans

"""Creating VMs the way the fleet simulator does: azure-mgmt-compute against the local ARM."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as m

from clouds.azure.arm import compute_client_factory
from config.settings import Settings


def settings_from_env() -> Settings:
    """Settings exactly as a worker would read them from its environment."""
    return Settings()


def compute_client(subscription: str) -> ComputeManagementClient:
    return compute_client_factory(settings_from_env().azure)(subscription)


def create_vm(
    subscription: str,
    group: str,
    name: str,
    *,
    tags: dict[str, str] | None = None,
    location: str = "East US",
    windows: bool = False,
) -> m.VirtualMachine:
    image = (
        m.ImageReference(
            publisher="MicrosoftWindowsServer",
            offer="WindowsServer",
            sku="2022-datacenter-azure-edition",
            version="latest",
        )
        if windows
        else m.ImageReference(
            publisher="Canonical",
            offer="0001-com-ubuntu-server-jammy",
            sku="22_04-lts-gen2",
            version="latest",
        )
    )
    vm = m.VirtualMachine(
        location=location,
        tags=tags,
        properties=m.VirtualMachineProperties(
            hardware_profile=m.HardwareProfile(vm_size="Standard_B2s"),
            storage_profile=m.StorageProfile(image_reference=image),
            os_profile=m.OSProfile(
                computer_name=name, admin_username="azureuser", admin_password="Not-Returned-1"
            ),
        ),
    )
    return (
        compute_client(subscription)
        .virtual_machines.begin_create_or_update(group, name, vm)
        .result()
    )


def new_subscription() -> str:
    return str(uuid.uuid4())


def imds_get(
    base: str, path: str, *, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    return httpx.get(
        f"{base}{path}", params=params, headers={"Metadata": "true", **(headers or {})}
    )


def signature_der(attested: dict[str, Any]) -> bytes:
    return base64.b64decode(attested["signature"], validate=True)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def load(path: Path) -> Any:
    return json.loads(path.read_text())

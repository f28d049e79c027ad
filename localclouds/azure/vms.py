"""The local Azure VMs: ARM resources in memory, persisted to ``vms.json`` on every change.

A VM is stored as the ARM resource ARM would return (``id``, ``name``, ``type``, ``location``,
``tags``, ``properties`` with ``vmId`` and ``provisioningState``) plus a ``_local`` section for
what a real VM has but ARM's resource does not carry (power state, NIC addresses).
Names are case-insensitive, as in ARM; the stored spelling is the one first PUT.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from localclouds.azure.material import LOCATION, normalise_location

VM_TYPE = "Microsoft.Compute/virtualMachines"
#: Azure VM names: 1-64 of letters, digits, '_', '.', '-'; not ending in '.' or '-'.
VM_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}[A-Za-z0-9_]$|^[A-Za-z0-9_]$")
RESOURCE_GROUP = re.compile(r"^[-\w._()]{0,89}[-\w_()]$")
#: Properties ARM never returns (write-only secrets).
WRITE_ONLY = ("adminPassword", "customData")
POWER_STATES = ("running", "stopped", "deallocated", "starting", "stopping", "deallocating")


class ArmError(Exception):
    """An ARM error answer: HTTP status, ARM error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def resource_id(subscription: str, group: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{VM_TYPE}/{name}"


def _key(subscription: str, group: str, name: str) -> str:
    return f"{subscription}/{group}/{name}".lower()


def _arm_time(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f0+00:00")


class VmStore:
    """Thread-safe VM registry; every mutation is written through to ``path``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.RLock()
        self._vms: dict[str, dict[str, Any]] = {}
        if path.exists():
            for vm in json.loads(path.read_text()).get("vms", []):
                sub, group, name = _parts(vm["id"])
                self._vms[_key(sub, group, name)] = vm

    def _save(self) -> None:
        tmp = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"vms": list(self._vms.values())}, indent=1, sort_keys=True))
        os.replace(tmp, self._path)

    def get(self, subscription: str, group: str, name: str) -> dict[str, Any]:
        with self._lock:
            vm = self._vms.get(_key(subscription, group, name))
            if vm is None:
                raise ArmError(
                    404,
                    "ResourceNotFound",
                    f"The Resource '{VM_TYPE}/{name}' under resource group '{group}' "
                    "was not found. "
                    "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                )
            return copy.deepcopy(vm)

    def list(self, subscription: str, group: str | None = None) -> list[dict[str, Any]]:
        prefix = f"{subscription}/{group}/".lower() if group else f"{subscription}/".lower()
        with self._lock:
            return [copy.deepcopy(v) for k, v in sorted(self._vms.items()) if k.startswith(prefix)]

    def for_imds(self, name_or_vm_id: str) -> dict[str, Any]:
        """The VM an IMDS URL names: by vmId, else by a name that is unique across the cloud."""
        wanted = name_or_vm_id.lower()
        with self._lock:
            by_id = [v for v in self._vms.values() if v["properties"]["vmId"] == wanted]
            matches = by_id or [v for v in self._vms.values() if v["name"].lower() == wanted]
            if len(matches) > 1:
                raise ArmError(
                    409, "Ambiguous", f"VM name {name_or_vm_id!r} is not unique; use its vmId"
                )
            if not matches:
                raise ArmError(404, "NotFound", f"no VM {name_or_vm_id!r}")
            return copy.deepcopy(matches[0])

    def put(
        self, subscription: str, group: str, name: str, body: Any, now: datetime
    ) -> tuple[dict[str, Any], bool]:
        """Create or replace a VM; returns the resource and whether it was created."""
        if not VM_NAME.fullmatch(name):
            raise ArmError(400, "InvalidResourceName", f"Resource name {name} is invalid.")
        if not RESOURCE_GROUP.fullmatch(group):
            raise ArmError(
                400, "InvalidResourceGroupName", f"Resource group name {group} is invalid."
            )
        if not isinstance(body, dict):
            raise ArmError(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized.",
            )
        location = body.get("location")
        if not isinstance(location, str) or not location.strip():
            raise ArmError(
                400, "LocationRequired", "The location property is required for this definition."
            )
        location = normalise_location(location)
        if not LOCATION.fullmatch(location):
            raise ArmError(
                400,
                "LocationNotAvailableForResourceType",
                f"The provided location '{location}' is not available for resource type "
                f"'{VM_TYPE}'.",
            )
        props = body.get("properties") or {}
        tags = body.get("tags") or {}
        if not isinstance(props, dict) or not isinstance(tags, dict):
            raise ArmError(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized.",
            )
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise ArmError(400, "InvalidTag", "Tag names and values must be strings.")
        with self._lock:
            key = _key(subscription, group, name)
            old = self._vms.get(key)
            if old is not None and old["location"] != location:
                raise ArmError(
                    409,
                    "InvalidResourceLocation",
                    f"The resource '{name}' already exists in location '{old['location']}' in "
                    f"resource group '{group}'. A resource with the same name cannot be created "
                    f"in location '{location}'. Please select a new resource name.",
                )
            if old is not None:
                subscription, group, name = _parts(old["id"])
            vm_id = old["properties"]["vmId"] if old else str(uuid.uuid4())
            created = old["properties"]["timeCreated"] if old else _arm_time(now)
            vm: dict[str, Any] = {
                "id": resource_id(subscription, group, name),
                "name": name,
                "type": VM_TYPE,
                "location": location,
                "tags": dict(tags),
                "properties": _complete_properties(
                    props, subscription, group, name, vm_id, created
                ),
                "_local": (old or {}).get("_local") or _local_section(vm_id),
            }
            for extra in ("zones", "plan", "identity"):
                if body.get(extra) is not None:
                    vm[extra] = body[extra]
            self._vms[key] = vm
            self._save()
            return copy.deepcopy(vm), old is None

    def patch(self, subscription: str, group: str, name: str, body: Any) -> dict[str, Any]:
        """Update tags (replaced whole, as ARM does) and merge properties."""
        if not isinstance(body, dict):
            raise ArmError(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized.",
            )
        with self._lock:
            vm = self._vms.get(_key(subscription, group, name))
            if vm is None:
                self.get(subscription, group, name)  # raises the 404
                raise AssertionError("unreachable")
            if isinstance(body.get("tags"), dict):
                vm["tags"] = {str(k): str(v) for k, v in body["tags"].items()}
            if isinstance(body.get("properties"), dict):
                protected = {
                    k: vm["properties"][k] for k in ("vmId", "provisioningState", "timeCreated")
                }
                _merge(vm["properties"], _strip_write_only(body["properties"]))
                vm["properties"].update(protected)
            self._save()
            return copy.deepcopy(vm)

    def delete(self, subscription: str, group: str, name: str) -> bool:
        with self._lock:
            existed = self._vms.pop(_key(subscription, group, name), None) is not None
            if existed:
                self._save()
            return existed

    def set_power_state(self, subscription: str, group: str, name: str, state: str) -> None:
        if state not in POWER_STATES:
            raise ValueError(state)
        with self._lock:
            vm = self._vms.get(_key(subscription, group, name))
            if vm is None:
                self.get(subscription, group, name)
                return
            vm["_local"]["powerState"] = state
            self._save()


def _parts(rid: str) -> tuple[str, str, str]:
    segments = rid.strip("/").split("/")
    return segments[1], segments[3], segments[7]


def _local_section(vm_id: str) -> dict[str, str]:
    digest = hashlib.sha256(vm_id.encode()).digest()
    return {
        "powerState": "running",
        "privateIp": f"10.0.{digest[0]}.{4 + digest[1] % 250}",
        "macAddress": "00" + digest[2:7].hex().upper(),
    }


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def _strip_write_only(props: dict[str, Any]) -> dict[str, Any]:
    props = copy.deepcopy(props)
    os_profile = props.get("osProfile")
    if isinstance(os_profile, dict):
        for secret in WRITE_ONLY:
            os_profile.pop(secret, None)
    return props


def _complete_properties(
    props: dict[str, Any], subscription: str, group: str, name: str, vm_id: str, created: str
) -> dict[str, Any]:
    """What ARM returns for a VM: the request's properties, defaults ARM fills in, no secrets."""
    props = _strip_write_only(props)
    props.setdefault("hardwareProfile", {}).setdefault("vmSize", "Standard_B2s")
    storage = props.setdefault("storageProfile", {})
    image = storage.get("imageReference") or {}
    is_windows = "windows" in f"{image.get('publisher', '')} {image.get('offer', '')}".lower()
    os_disk = storage.setdefault("osDisk", {})
    os_disk.setdefault("osType", "Windows" if is_windows else "Linux")
    disk_name = f"{name}_OsDisk_1_{vm_id.replace('-', '')}"
    os_disk.setdefault("name", disk_name)
    os_disk.setdefault("createOption", "FromImage")
    os_disk.setdefault("caching", "ReadWrite")
    os_disk.setdefault("diskSizeGB", 127 if os_disk["osType"] == "Windows" else 30)
    managed = os_disk.setdefault("managedDisk", {})
    managed.setdefault("storageAccountType", "Premium_LRS")
    managed.setdefault(
        "id",
        f"/subscriptions/{subscription}/resourceGroups/{group.upper()}/providers/"
        f"Microsoft.Compute/disks/{os_disk['name']}",
    )
    storage.setdefault("dataDisks", [])
    os_profile = props.setdefault("osProfile", {})
    os_profile.setdefault("computerName", name)
    os_profile.setdefault("adminUsername", "azureuser")
    os_profile.setdefault("secrets", [])
    os_profile.setdefault("allowExtensionOperations", True)
    props.setdefault("networkProfile", {}).setdefault(
        "networkInterfaces",
        [
            {
                "id": f"/subscriptions/{subscription}/resourceGroups/{group}/providers/"
                f"Microsoft.Network/networkInterfaces/{name}-nic"
            }
        ],
    )
    props["vmId"] = vm_id
    props["provisioningState"] = "Succeeded"
    props["timeCreated"] = created
    return props


def arm_view(vm: dict[str, Any], *, instance_view: bool = False) -> dict[str, Any]:
    """The resource as ARM returns it (``_local`` removed; instanceView on ``$expand``)."""
    out = {k: copy.deepcopy(v) for k, v in vm.items() if k != "_local"}
    if not out.get("tags"):
        out.pop("tags", None)
    if instance_view:
        out["properties"]["instanceView"] = instance_view_of(vm)
    return out


def instance_view_of(vm: dict[str, Any]) -> dict[str, Any]:
    power = vm.get("_local", {}).get("powerState", "running")
    display = {"running": "VM running", "stopped": "VM stopped", "deallocated": "VM deallocated"}
    return {
        "computerName": vm["properties"]["osProfile"]["computerName"],
        "statuses": [
            {
                "code": "ProvisioningState/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
            },
            {
                "code": f"PowerState/{power}",
                "level": "Info",
                "displayStatus": display.get(power, f"VM {power}"),
            },
        ],
    }

"""``/metadata/instance``: the compute and network sections IMDS serves a VM about itself.

Built from the VM's ARM resource. As in IMDS, every primitive is a string and missing values are
empty strings; ``tags`` is ``k:v;k2:v2`` and ``tagsList`` a list of ``{name, value}``. Only what
a startup script needs is filled in (identity, placement, OS, image, disks, tags, addresses).
"""

from __future__ import annotations

from typing import Any


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compute_section(vm: dict[str, Any]) -> dict[str, Any]:
    props = vm["properties"]
    storage = props.get("storageProfile", {})
    image = storage.get("imageReference") or {}
    os_disk = storage.get("osDisk") or {}
    os_profile = props.get("osProfile") or {}
    plan = vm.get("plan") or {}
    tags: dict[str, str] = vm.get("tags") or {}
    segments = vm["id"].strip("/").split("/")
    linux = os_profile.get("linuxConfiguration") or {}
    return {
        "azEnvironment": "AzurePublicCloud",
        "customData": "",
        "evictionPolicy": "",
        "isHostCompatibilityLayerVm": "false",
        "licenseType": _s(props.get("licenseType")),
        "location": vm["location"],
        "name": vm["name"],
        "offer": _s(image.get("offer")),
        "osProfile": {
            "adminUsername": _s(os_profile.get("adminUsername")),
            "computerName": _s(os_profile.get("computerName")),
            "disablePasswordAuthentication": _s(linux.get("disablePasswordAuthentication", "")),
        },
        "osType": _s(os_disk.get("osType")),
        "placementGroupId": "",
        "plan": {k: _s(plan.get(k)) for k in ("name", "product", "publisher")},
        "platformFaultDomain": "0",
        "platformUpdateDomain": "0",
        "priority": _s(props.get("priority")),
        "provider": "Microsoft.Compute",
        "publicKeys": [],
        "publisher": _s(image.get("publisher")),
        "resourceGroupName": segments[3],
        "resourceId": vm["id"],
        "securityProfile": {"secureBootEnabled": "false", "virtualTpmEnabled": "false"},
        "sku": _s(image.get("sku")),
        "storageProfile": {
            "dataDisks": [],
            "imageReference": {
                k: _s(image.get(k)) for k in ("id", "offer", "publisher", "sku", "version")
            },
            "osDisk": {
                "caching": _s(os_disk.get("caching")),
                "createOption": _s(os_disk.get("createOption")),
                "diffDiskSettings": {"option": ""},
                "diskSizeGB": _s(os_disk.get("diskSizeGB")),
                "encryptionSettings": {"enabled": "false"},
                "image": {"uri": ""},
                "managedDisk": {
                    "id": _s((os_disk.get("managedDisk") or {}).get("id")),
                    "storageAccountType": _s(
                        (os_disk.get("managedDisk") or {}).get("storageAccountType")
                    ),
                },
                "name": _s(os_disk.get("name")),
                "osType": _s(os_disk.get("osType")),
                "vhd": {"uri": ""},
                "writeAcceleratorEnabled": "false",
            },
            "resourceDisk": {"size": "0"},
        },
        "subscriptionId": segments[1],
        "tags": ";".join(f"{k}:{v}" for k, v in tags.items()),
        "tagsList": [{"name": k, "value": v} for k, v in tags.items()],
        "userData": "",
        "version": _s(image.get("exactVersion") or image.get("version")),
        "vmId": props["vmId"],
        "vmScaleSetName": "",
        "vmSize": _s((props.get("hardwareProfile") or {}).get("vmSize")),
        "zone": _s((vm.get("zones") or [""])[0]),
    }


def network_section(vm: dict[str, Any]) -> dict[str, Any]:
    local = vm.get("_local") or {}
    ip = local.get("privateIp", "")
    subnet = ".".join(ip.split(".")[:3] + ["0"]) if ip else ""
    return {
        "interface": [
            {
                "ipv4": {
                    "ipAddress": [{"privateIpAddress": ip, "publicIpAddress": ""}],
                    "subnet": [{"address": subnet, "prefix": "24"}],
                },
                "ipv6": {"ipAddress": []},
                "macAddress": local.get("macAddress", ""),
            }
        ]
    }


def instance_document(vm: dict[str, Any]) -> dict[str, Any]:
    return {"compute": compute_section(vm), "network": network_section(vm)}


class NotFoundPath(Exception):
    """A route parameter walked off the document."""


def walk(document: Any, segments: list[str]) -> Any:
    """Route-parameter filtering: ``/metadata/instance/compute/tagsList/0`` walks keys/indexes."""
    node = document
    for segment in segments:
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            raise NotFoundPath(segment)
    return node


def as_text(node: Any) -> str:
    """``format=text``: a leaf's value; for objects and lists, their keys / indexes one a line."""
    if isinstance(node, dict):
        return "\n".join(f"{k}/" if isinstance(v, dict | list) else k for k, v in node.items())
    if isinstance(node, list):
        return "\n".join(f"{i}/" for i in range(len(node)))
    return _s(node)

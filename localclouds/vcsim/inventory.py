"""The local vCenter's saved inventory: the VMs made in it after start, kept across restarts.

vcsim holds its inventory in memory only. The wrapper (``python -m localclouds.vcsim``) notes the
VMs that were not there when vcsim started (the simulated fleet's clones, an operator's VMs), every
few seconds and when it stops, in ``DIR/vcsim/inventory.json`` (0600: it holds the VMs' tokens):
name, folder (inventory path), instanceUuid, BIOS uuid, power state, ``guestinfo.*`` extraConfig
and custom attributes. At the next start it re-creates them through the vSphere API (a clone of a
built-in VM into the same folder, with the same instanceUuid and BIOS uuid), so the managed
instances enrolled from them (instance key ``{vcenter}/{instanceUuid}``) still have their VMs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyVmomi import vim

from clouds.vmware.vsphere import VsphereClient

TEMPLATE = "DC0_H0_VM0"  # what the simulated fleet clones too
GUESTINFO = "guestinfo."


@dataclass(frozen=True)
class SavedVm:
    name: str
    folder: str  # inventory path of its folder, e.g. "DC0/vm" or "DC0/vm/acme"
    instance_uuid: str
    bios_uuid: str
    power_state: str
    guestinfo: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


def inventory_path(state_dir: Path) -> Path:
    return Path(state_dir) / "vcsim" / "inventory.json"


def load(path: Path) -> list[SavedVm]:
    """The saved VMs; none when the file is missing."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    return [SavedVm(**entry) for entry in raw.get("vms", [])]


def save(path: Path, vms: list[SavedVm]) -> bool:
    """Write the file when its content changes (atomically, 0600); True when it was written."""
    text = json.dumps({"vms": [asdict(vm) for vm in vms]}, indent=1, sort_keys=True)
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)
    return True


def _folder_path(folder: Any, root: Any, cache: dict[str, str]) -> str:
    key = folder._moId
    if key not in cache:
        parts: list[str] = []
        node = folder
        while node is not None and node != root:
            parts.append(node.name)
            node = node.parent
        cache[key] = "/".join(reversed(parts))
    return cache[key]


def snapshot(client: VsphereClient, builtin: set[str]) -> list[SavedVm]:
    """Every VM whose instanceUuid is not one of ``builtin`` (the VMs vcsim starts with)."""
    names = client.custom_field_names()
    root = client.content.rootFolder
    folders: dict[str, str] = {}
    saved = []
    for facts in client.all_vms():
        if facts.template or not facts.instance_uuid or facts.instance_uuid in builtin:
            continue
        saved.append(SavedVm(
            name=facts.name,
            folder=_folder_path(facts.vm.parent, root, folders),
            instance_uuid=facts.instance_uuid,
            bios_uuid=facts.bios_uuid,
            power_state=facts.power_state,
            guestinfo={k: v for k, v in facts.extra_config.items() if k.startswith(GUESTINFO)},
            labels={names[k]: v for k, v in facts.custom_values.items() if k in names},
        ))
    return saved


def _ensure_folder(client: VsphereClient, path: str) -> Any:
    index = client.content.searchIndex
    found = index.FindByInventoryPath(inventoryPath=path)
    if found is not None:
        return found
    parent_path, _, name = path.rpartition("/")
    parent = _ensure_folder(client, parent_path)
    return parent.CreateFolder(name=name)


def restore(client: VsphereClient, vms: list[SavedVm]) -> list[str]:
    """Re-create the saved VMs that are missing; returns their names."""
    template = client.find_vm_by_name(TEMPLATE)
    if template is None:
        raise LookupError(f"vcsim has no {TEMPLATE} to clone")
    made = []
    for saved in vms:
        if client.find_vm_by_instance_uuid(saved.instance_uuid) is not None:
            continue
        folder = _ensure_folder(client, saved.folder)
        config = vim.vm.ConfigSpec(
            instanceUuid=saved.instance_uuid,
            extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in saved.guestinfo.items()],
        )
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(), config=config, template=False,
                                powerOn=saved.power_state == "poweredOn")
        task = template.CloneVM_Task(folder=folder, name=saved.name, spec=spec)
        client._wait(task, f"re-creating {saved.name}")
        vm = task.info.result
        if saved.bios_uuid and client.vm_facts(vm).bios_uuid != saved.bios_uuid:
            client._wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(uuid=saved.bios_uuid)),
                         f"setting the BIOS uuid of {saved.name}")
        for name, value in saved.labels.items():
            client.set_custom_attribute(vm, name, value)
        made.append(saved.name)
    return made

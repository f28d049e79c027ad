"""The fleet's VMs on disk: one record per VM, its directory, and the public list.

``DIR/fleet/fleet.json`` keeps every record (a restart of the fleet host finds its VMs again);
``DIR/fleet/vms.json`` is the list the supervisor merges into ``.fleetpatch/local.json`` under
``vms`` (provider, name, instance_key, customer, metadata_url). A VM's directory
``DIR/fleet/vms/NAME/`` holds its os-release stand-in, BIOS UUID file (vSphere), the startup
script and its environment, boot.log, software.json and (0600) registration.json.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localclouds.aws.agent_client import InstanceKey, Registration

BOOTING = "booting"
REGISTERING = "registering"
ACTIVATED = "activated"
ONLINE = "agent online"
FAILED = "failed"


@dataclass
class VmRecord:
    name: str
    number: int
    provider: str
    customer: str
    os: str
    patch_group: str | None
    state: str = BOOTING
    reason: str = ""
    cloud_account: str = ""
    instance_id: str = ""
    instance_key: str = ""
    metadata_url: str = ""
    managed_instance_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    command_duration: float | None = None
    failure_rate: float | None = None
    agent_version: str = ""  # the SSM agent installed on the VM; "" while it has none

    def public(self) -> dict[str, str]:
        return {"provider": self.provider, "name": self.name, "instance_key": self.instance_key,
                "customer": self.customer, "metadata_url": self.metadata_url}

    def view(self) -> dict[str, Any]:
        view = asdict(self)
        view["extra"] = {k: v for k, v in self.extra.items() if k != "bios_uuid"}
        return view


def write_json_atomic(path: Path, document: Any, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    tmp.replace(path)


class FleetStore:
    def __init__(self, fleet_dir: Path) -> None:
        self.dir = fleet_dir
        self.records: dict[str, VmRecord] = {}
        path = fleet_dir / "fleet.json"
        if path.exists():
            for item in json.loads(path.read_text()).get("vms", []):
                self.records[item["name"]] = VmRecord(**item)

    def vm_dir(self, name: str) -> Path:
        return self.dir / "vms" / name

    def next_number(self) -> int:
        return max((r.number for r in self.records.values()), default=-1) + 1

    def save(self) -> None:
        ordered = sorted(self.records.values(), key=lambda r: r.number)
        write_json_atomic(self.dir / "fleet.json", {"vms": [asdict(r) for r in ordered]})
        write_json_atomic(self.dir / "vms.json",
                          [r.public() for r in ordered if r.instance_key])

    def save_registration(self, name: str, registration: Registration) -> None:
        write_json_atomic(self.vm_dir(name) / "registration.json", {
            "instance_id": registration.instance_id, "region": registration.region,
            "fingerprint": registration.fingerprint,
            "private_key": registration.key.private_key, "public_key": registration.key.public_key,
        }, mode=0o600)

    def load_registration(self, name: str) -> Registration | None:
        path = self.vm_dir(name) / "registration.json"
        if not path.exists():
            return None
        doc = json.loads(path.read_text())
        return Registration(doc["instance_id"], doc["region"], doc["fingerprint"],
                            InstanceKey(doc["private_key"], doc["public_key"]))

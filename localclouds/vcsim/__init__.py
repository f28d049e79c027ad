"""Local vCenter: govmomi's vcsim (built from Debian packages) plus a "guest tools" stand-in.

Run ``python -m localclouds.vcsim --host 127.0.0.1 --port P --state-dir DIR [--guest-port G]``.

Layout (G defaults to P + 1):

* ``http://HOST:P/sdk`` - vcsim's vSphere SOAP API (plain http, login ``USERNAME``/``PASSWORD``),
  VPX inventory: DC0 with VMs ``DC0_H0_VM0``, ``DC0_H0_VM1``, ``DC0_C0_RP0_VM0``, ``DC0_C0_RP0_VM1``.
  ``http://HOST:P/__fleetpatch/health`` answers as soon as vcsim listens (served by main.go).
* ``http://HOST:G/vm/NAME`` - what VMware Tools gives the guest ``NAME``:
  ``GET .../guestinfo/KEY`` (extraConfig ``guestinfo.KEY``, 404 when unset) and
  ``GET .../bios-uuid`` (``config.uuid``, what /sys/class/dmi/id/product_uuid shows;
  ``?byte_order=legacy`` gives the first three fields swapped, as older virtual hardware does).
  ``http://HOST:G/__fleetpatch/health`` answers 200 once vcsim is up and seeded: it is
  ``describe()["health_url"]``, the one to wait on.
* ``bin/vmware-rpctool`` - a shell stand-in for open-vm-tools' tool: with
  ``FLEETPATCH_GUEST_TOOLS_URL=http://HOST:G/vm/NAME`` it answers
  ``vmware-rpctool "info-get guestinfo.fleetpatch.token"`` like the real one inside NAME.
* ``DIR/vcsim/`` - the vCenter token signing key (``signing_key.pem``, 0600) and its public key
  (``public_key.pem``), generated once and reused; ``vcsim.log`` (vcsim's stderr);
  ``inventory.json`` (0600): the VMs made after start (the simulated fleet's), re-created with the
  same name, folder, instanceUuid, BIOS uuid, guestinfo and custom attributes at the next start
  (``inventory.py``), so a second ``make run`` still has them.

:func:`describe` and :func:`worker_env` are pure: they compute addresses and paths only.
"""

from __future__ import annotations

import json
from pathlib import Path

from localclouds.addresses import HEALTH_PATH, base_url

__all__ = [
    "PASSWORD",
    "RPCTOOL",
    "USERNAME",
    "VCENTER_ID",
    "describe",
    "guest_port_for",
    "key_paths",
    "worker_env",
]

VCENTER_ID = "vc-local-1"
#: Fixed local credentials: vcsim listens on loopback only and holds no real data.
USERNAME = "fleetpatch"
PASSWORD = "fleetpatch-local"
RPCTOOL = Path(__file__).resolve().parent / "bin" / "vmware-rpctool"


def guest_port_for(port: int) -> int:
    """The guest tools port when none is given: the vCenter port + 1."""
    return port + 1


def key_paths(state_dir: Path) -> tuple[Path, Path]:
    """``(signing key, public key)`` under ``DIR/vcsim/``."""
    base = Path(state_dir) / "vcsim"
    return base / "signing_key.pem", base / "public_key.pem"


def describe(
    state_dir: Path, host: str, port: int, guest_port: int | None = None
) -> dict[str, str]:
    """This cloud's entry in ``.fleetpatch/local.json``."""
    signing, public = key_paths(state_dir)
    guest = base_url(host, guest_port or guest_port_for(port))
    return {
        "url": f"{base_url(host, port)}/sdk",
        "username": USERNAME,
        "password": PASSWORD,
        "vcenter_id": VCENTER_ID,
        "signing_key": str(signing),
        "public_key": str(public),
        "health_url": f"{guest}{HEALTH_PATH}",
        "guest_tools": f"{guest}/vm/{{name}}",
        "rpctool": str(RPCTOOL),
    }


def worker_env(
    state_dir: Path, host: str, port: int, guest_port: int | None = None
) -> dict[str, str]:
    """Settings for a vmware worker (and the CLI) that use this vCenter."""
    signing, _ = key_paths(state_dir)
    vcenters = {
        VCENTER_ID: {
            "url": f"{base_url(host, port)}/sdk",
            "username": USERNAME,
            "password": PASSWORD,
            "signing_key_file": str(signing),
            "insecure": False,  # plain http: there is no certificate to verify
        }
    }
    return {"FLEETPATCH_VMWARE__VCENTERS": json.dumps(vcenters, sort_keys=True)}

"""The simulated fleet: VMs in the local clouds that run the real startup script, and simulated
SSM agents that register, ping, poll and patch a synthetic package set.

Run ``python -m localclouds.fleet --host 127.0.0.1 --port P --state-dir DIR`` (``fleetpatch up``
does). The other local clouds and the API are found in ``DIR/local.json`` when VMs are created.
HTTP API: ``POST /vms`` boots VMs, ``GET /vms`` lists them with their enrollment progress,
``GET /customers?count=K`` gives the demo customers' link bodies; see ``app.py``. Each VM lives in
``DIR/fleet/vms/NAME/``; the list of VMs is ``DIR/fleet/vms.json`` (``describe()["vms_file"]``).

:func:`describe` and :func:`worker_env` are pure.
"""

from __future__ import annotations

from pathlib import Path

from localclouds.addresses import base_url, health_url

__all__ = ["describe", "fleet_dir", "worker_env"]


def fleet_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "fleet"


def describe(state_dir: Path, host: str, port: int) -> dict[str, str]:
    """This service's entry in ``.fleetpatch/local.json``."""
    base = base_url(host, port)
    return {
        "url": base,
        "health": health_url(host, port),
        "vms_file": str(fleet_dir(state_dir) / "vms.json"),
    }


def worker_env(state_dir: Path, host: str, port: int) -> dict[str, str]:
    """Workers never talk to the fleet: it plays the customers' VMs, not a cloud API."""
    return {}

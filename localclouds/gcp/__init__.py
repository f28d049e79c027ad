"""Local GCP cloud: per-VM metadata servers, a JWKS and Compute Engine REST, in one process.

Run ``python -m localclouds.gcp --host 127.0.0.1 --port P --state-dir DIR``. A VM named ``NAME``
(created with the real SDK's ``InstancesClient.insert``) has its metadata server at
``http://HOST:P/vm/NAME``; below it the paths are the real ones
(``/computeMetadata/v1/instance/service-accounts/default/identity?audience=...&format=full``).
Instance names are unique across projects here, since the URL names only the VM.

:func:`describe` and :func:`worker_env` are pure: they compute addresses and paths only.
"""

from __future__ import annotations

from pathlib import Path

from localclouds.addresses import base_url, health_url
from localclouds.gcp.keys import JWKS_FILE, JWKS_PATH

__all__ = ["describe", "worker_env"]


def describe(state_dir: Path, host: str, port: int) -> dict[str, str]:
    """This cloud's entry in ``.fleetpatch/local.json``."""
    base = base_url(host, port)
    return {
        "metadata": f"{base}/vm/{{name}}",
        "jwks_url": f"{base}{JWKS_PATH}",
        "jwks_file": str(Path(state_dir) / "gcp" / JWKS_FILE),
        "compute_endpoint": base,
        "health": health_url(host, port),
    }


def worker_env(state_dir: Path, host: str, port: int) -> dict[str, str]:
    """Settings for a gcp worker that trusts this cloud's key and reads its Compute API."""
    base = base_url(host, port)
    return {
        "FLEETPATCH_GCP__JWKS_URL": f"{base}{JWKS_PATH}",
        "FLEETPATCH_GCP__COMPUTE_ENDPOINT": base,
        "FLEETPATCH_GCP__COMPUTE_CREDENTIALS": "anonymous",
    }

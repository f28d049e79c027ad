"""Where the local EC2 IMDS keeps its state, and what it tells workers (describe, worker_env).

Layout under ``DIR/ec2/``::

    certs/{rsa2048,rsa,dsa}/<region>.pem    public signing certificates, one per region and form,
                                            self-signed like AWS's; FLEETPATCH_EC2__CERTS_DIR
    private/{rsa2048,rsa,dsa}/<region>.key  their keys (mode 0600), outside the certs directory
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from localclouds.addresses import base_url, health_url

Form = Literal["rsa2048", "rsa", "dsa"]
FORMS: tuple[Form, ...] = ("rsa2048", "rsa", "dsa")


@dataclass(frozen=True)
class Ec2Paths:
    root: Path

    @classmethod
    def under(cls, state_dir: Path) -> Ec2Paths:
        return cls(Path(state_dir).resolve() / "ec2")

    @property
    def certs_dir(self) -> Path:
        return self.root / "certs"

    def cert(self, form: Form, region: str) -> Path:
        return self.certs_dir / form / f"{region}.pem"

    def key(self, form: Form, region: str) -> Path:
        return self.root / "private" / form / f"{region}.key"


def describe(state_dir: Path, host: str, port: int) -> dict[str, Any]:
    """This cloud's entry in ``.fleetpatch/local.json``."""
    base = base_url(host, port)
    return {
        "imds": f"{base}/vm/{{account}}/{{region}}/{{instance_id}}",
        "certs_dir": str(Ec2Paths.under(state_dir).certs_dir),
        "health": health_url(host, port),
    }


def worker_env(state_dir: Path, host: str, port: int) -> dict[str, str]:
    """Settings for an ec2 worker that trusts this IMDS's per-region certificates.

    The EC2 API endpoint itself is the local AWS (moto) and comes from its own worker_env
    (``FLEETPATCH_AWS__ENDPOINT_URL``), which the ec2 worker falls back to.
    """
    return {"FLEETPATCH_EC2__CERTS_DIR": str(Ec2Paths.under(state_dir).certs_dir)}

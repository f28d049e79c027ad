"""Where the local Azure cloud keeps its state, and what it tells workers (describe, worker_env).

Layout under ``DIR/azure/`` (certificates public, keys under ``private/`` with mode 0600)::

    imds-root.pem, imds-intermediate.pem     local stand-ins for Azure's IMDS chain
    imds-signers/<location>.pem              CN=metadata.azure.com, SAN <loc>.metadata.azure.com
    arm-ca.pem, arm-tls.pem                  a separate TLS CA and ARM's server certificate
    vms.json                                 the VMs (ARM resources), so a restart keeps them
    arm-port                                 the ARM port last listened on (for worker_env)
    private/*.key, private/identity.json     keys, token-signing key, managed-identity secret
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localclouds.addresses import base_url, health_url

#: The path App Service's managed-identity endpoint uses; azure-identity takes the whole URL.
IDENTITY_PATH = "/msi/token"


@dataclass(frozen=True)
class AzurePaths:
    """Every file the local Azure cloud reads or writes."""

    root: Path

    @classmethod
    def under(cls, state_dir: Path) -> AzurePaths:
        return cls(Path(state_dir).resolve() / "azure")

    @property
    def private(self) -> Path:
        return self.root / "private"

    @property
    def imds_root(self) -> Path:
        return self.root / "imds-root.pem"

    @property
    def imds_intermediate(self) -> Path:
        return self.root / "imds-intermediate.pem"

    def imds_signer(self, location: str) -> Path:
        return self.root / "imds-signers" / f"{location}.pem"

    def imds_signer_key(self, location: str) -> Path:
        return self.private / "imds-signers" / f"{location}.key"

    @property
    def arm_ca(self) -> Path:
        return self.root / "arm-ca.pem"

    @property
    def arm_tls(self) -> Path:
        return self.root / "arm-tls.pem"

    @property
    def vms(self) -> Path:
        return self.root / "vms.json"

    @property
    def arm_port(self) -> Path:
        return self.root / "arm-port"

    @property
    def identity(self) -> Path:
        return self.private / "identity.json"

    def key(self, stem: str) -> Path:
        return self.private / f"{stem}.key"


@dataclass(frozen=True)
class LocalIdentity:
    """The managed identity the local cloud issues tokens for, and the App Service secret."""

    tenant_id: str
    principal_id: str
    client_id: str
    identity_header: str

    @property
    def issuer(self) -> str:
        return f"https://sts.windows.net/{self.tenant_id}/"


def ensure_identity(paths: AzurePaths) -> LocalIdentity:
    """Load the local identity, creating it once (safe when two processes race to create it)."""
    try:
        return _read_identity(paths.identity)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    record = {
        "tenant_id": str(uuid.uuid4()),
        "principal_id": str(uuid.uuid4()),
        "client_id": str(uuid.uuid4()),
        "identity_header": secrets.token_urlsafe(32),
    }
    paths.private.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = paths.identity.with_name(f".identity.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)
    try:
        os.link(tmp, paths.identity)  # fails if another process created it first: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read_identity(paths.identity)


def _read_identity(path: Path) -> LocalIdentity:
    data = json.loads(path.read_text())
    return LocalIdentity(
        tenant_id=str(data["tenant_id"]),
        principal_id=str(data["principal_id"]),
        client_id=str(data["client_id"]),
        identity_header=str(data["identity_header"]),
    )


def _arm_port(paths: AzurePaths, imds_port: int, arm_port: int | None) -> int:
    """The ARM port: given, else the one the running cloud recorded, else the IMDS port + 1."""
    if arm_port is not None:
        return arm_port
    try:
        return int(paths.arm_port.read_text().strip())
    except (OSError, ValueError):
        return imds_port + 1


def describe(
    state_dir: Path, host: str, port: int, *, arm_port: int | None = None
) -> dict[str, Any]:
    """This cloud's entry in ``.fleetpatch/local.json``."""
    paths = AzurePaths.under(state_dir)
    imds = base_url(host, port)
    return {
        "imds": f"{imds}/vm/{{name}}",
        "arm": base_url(host, _arm_port(paths, port, arm_port), "https"),
        "ca_bundle": str(paths.arm_ca),
        "roots": str(paths.imds_root),
        "intermediates": str(paths.imds_intermediate),
        "identity_endpoint": f"{imds}{IDENTITY_PATH}",
        "health": health_url(host, port),
    }


def worker_env(
    state_dir: Path, host: str, port: int, *, arm_port: int | None = None
) -> dict[str, str]:
    """Settings for an azure worker that uses this cloud instead of Azure.

    ``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER`` are the App Service managed-identity variables
    azure-identity reads itself; ``AZURE_TOKEN_CREDENTIALS`` pins DefaultAzureCredential to
    that managed identity, so a developer's own Azure login is never picked up by accident.
    """
    paths = AzurePaths.under(state_dir)
    identity = ensure_identity(paths)
    info = describe(state_dir, host, port, arm_port=arm_port)
    return {
        "IDENTITY_ENDPOINT": info["identity_endpoint"],
        "IDENTITY_HEADER": identity.identity_header,
        "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
        "FLEETPATCH_AZURE__ARM_ENDPOINT": info["arm"],
        "FLEETPATCH_AZURE__CA_BUNDLE": info["ca_bundle"],
        "FLEETPATCH_AZURE__ROOTS_FILE": info["roots"],
        "FLEETPATCH_AZURE__INTERMEDIATES_FILE": info["intermediates"],
    }

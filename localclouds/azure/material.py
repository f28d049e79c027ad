"""The local Azure cloud's keys and certificates, generated once and reused on restart.

Two separate trust domains, as in Azure: the IMDS signing chain (a root and an issuing CA whose
leaf certificates say CN=metadata.azure.com, SAN ``<location>.metadata.azure.com``, EKU
serverAuth + clientAuth), and a TLS CA for ARM's HTTPS endpoint. A third key signs the access
tokens the managed-identity endpoint issues and ARM checks.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from localclouds import tls
from localclouds.azure.layout import AzurePaths, LocalIdentity, ensure_identity

#: An Azure location name as ARM normalises it ("westeurope", "eastus2").
LOCATION = re.compile(r"^[a-z][a-z0-9]{1,40}$")
DEFAULT_LOCATIONS = ("eastus", "westeurope")


def normalise_location(location: str) -> str:
    """ARM's canonical spelling of a location: "West Europe" -> "westeurope"."""
    return location.replace(" ", "").lower()


@dataclass
class AzureMaterial:
    """Loaded trust material plus the lazily issued per-location IMDS signers."""

    paths: AzurePaths
    imds_root: tls.CertifiedKey
    imds_intermediate: tls.CertifiedKey
    arm_ca: tls.CertifiedKey
    arm_tls: tls.CertifiedKey
    token_key: tls.PrivateKey
    identity: LocalIdentity
    _signers: dict[str, tls.CertifiedKey] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def signer(self, location: str, now: datetime | None = None) -> tls.CertifiedKey:
        """The IMDS signing certificate for ``location`` (issued on first use, then persisted)."""
        location = normalise_location(location)
        if not LOCATION.fullmatch(location):
            raise ValueError(f"not an Azure location: {location!r}")
        with self._lock:
            signer = self._signers.get(location)
            renew_at = signer.certificate.not_valid_after_utc - tls.RENEW_MARGIN if signer else None
            if renew_at is None or renew_at <= (now or datetime.now(UTC)):
                signer = tls.ensure_leaf(
                    self.paths.imds_signer(location),
                    self.paths.imds_signer_key(location),
                    issuer=self.imds_intermediate,
                    subject=tls.name("metadata.azure.com", state="WA", locality="Redmond"),
                    dns_names=[f"{location}.metadata.azure.com", "metadata.azure.com"],
                    extended_key_usages=[tls.SERVER_AUTH, tls.CLIENT_AUTH],
                    now=now,
                )
                self._signers[location] = signer
            return signer


def _tls_names(host: str) -> tuple[list[str], list[str]]:
    """DNS names and IP addresses ARM's certificate must carry to be reachable at ``host``."""
    dns, ips = ["localhost"], ["127.0.0.1", "::1"]
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if host and host not in dns:
            dns.append(host)
    else:
        if not ip.is_unspecified and str(ip) not in ips:
            ips.append(str(ip))
    return dns, ips


def ensure_material(
    paths: AzurePaths,
    *,
    host: str = "127.0.0.1",
    locations: tuple[str, ...] = DEFAULT_LOCATIONS,
    now: datetime | None = None,
) -> AzureMaterial:
    """Generate (first run) or load (later runs) everything, before the server reports healthy."""
    paths.root.mkdir(parents=True, exist_ok=True)
    imds_root = tls.ensure_root_ca(
        paths.imds_root,
        paths.key("imds-root"),
        common_name="fleetpatch local Azure IMDS Root CA",
        now=now,
    )
    imds_intermediate = tls.ensure_intermediate_ca(
        paths.imds_intermediate,
        paths.key("imds-intermediate"),
        issuer=imds_root,
        common_name="fleetpatch local Azure IMDS Issuing CA 01",
        now=now,
    )
    arm_ca = tls.ensure_root_ca(
        paths.arm_ca, paths.key("arm-ca"), common_name="fleetpatch local Azure ARM TLS CA", now=now
    )
    dns, ips = _tls_names(host)
    arm_tls = tls.ensure_leaf(
        paths.arm_tls,
        paths.key("arm-tls"),
        issuer=arm_ca,
        subject=tls.name("management.local.azure"),
        dns_names=dns,
        ip_addresses=ips,
        now=now,
    )
    token_key = tls.load_private_key(paths.key("token-signing"))
    if token_key is None:
        token_key = tls.rsa_key()()
        tls.write_private_key(paths.key("token-signing"), token_key)
    material = AzureMaterial(
        paths=paths,
        imds_root=imds_root,
        imds_intermediate=imds_intermediate,
        arm_ca=arm_ca,
        arm_tls=arm_tls,
        token_key=token_key,
        identity=ensure_identity(paths),
    )
    for location in locations:
        material.signer(location, now)
    return material

"""Proof before work: the API verifies a registration's identity itself before it names, starts,
signals or queries any workflow.

The verifiers are the pure ones the workers use (``clouds/*/verify.py``, ``clouds.vmware.token``)
with the same trust anchors: production ones by default, local ones by configuration
(``FLEETPATCH_GCP__JWKS_URL|JWKS_FILE``, ``FLEETPATCH_AZURE__ROOTS_FILE``,
``FLEETPATCH_EC2__CERTS_DIR``). No cloud SDK is imported: GCP keys come over HTTP (httpx) from the
configured JWKS URL and are cached and refreshed as ``clouds.gcp.jwks.RemoteJwks`` does. vCenter
tokens are checked against the link's public keys, which the API learns from
``clients.api.vcenter_keys`` (a cache filled from Temporal, never from AWS: the API holds no cloud
credentials). The worker verifies again, with the live checks only it can make (the token still in
the VM's guestinfo, the BIOS UUID, Compute/ARM/EC2 reads).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
from cryptography import x509

from clients.api.registration_input import AwsIdentity, AzureIdentity, GcpIdentity, Identity, VmwareIdentity
from clouds.azure.verify import trust_from_settings, verify_azure_attested
from clouds.ec2.verify import Ec2TrustStore, verify_ec2_identity
from clouds.gcp.jwks import KeySource, RemoteJwks, StaticJwks
from clouds.gcp.verify import verify_gcp_token
from clouds.vmware.token import peek_vcenter_token, verify_token
from config.settings import Settings
from contracts.errors import ErrorType, IdentityRefused
from contracts.identity import instance_key
from contracts.vcenter_links import vcenter_of

#: ``link id -> PEM public keys`` of that vmware link, or None when no such link exists.
VcenterKeys = Callable[[str], Awaitable[list[str] | None]]


class _HttpxJwkClient(jwt.PyJWKClient):
    """``PyJWKClient`` whose download goes through httpx (the API's one HTTP client)."""

    def fetch_data(self) -> Any:
        try:
            response = httpx.get(self.uri, timeout=self.timeout, follow_redirects=False)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise jwt.exceptions.PyJWKClientConnectionError(f"fetching the JWKS failed: {type(exc).__name__}") from exc
        if self.jwk_set_cache is not None:
            self.jwk_set_cache.put(data)
        return data


def gcp_keys(settings: Settings) -> KeySource:
    """The worker's key source, with the URL fetched over httpx."""
    gcp = settings.gcp
    if gcp.jwks_file is not None:
        return StaticJwks.from_file(gcp.jwks_file)
    client = _HttpxJwkClient(gcp.jwks_url, cache_jwk_set=True, lifespan=3600, timeout=10, cooldown_duration=0)
    return RemoteJwks(client, min_refresh_interval=gcp.jwks_min_refresh_interval.total_seconds())


class IdentityProof:
    """Verifies the identity of a registration; raises ``IdentityRefused`` (answered 401)."""

    def __init__(
        self,
        settings: Settings,
        vcenter_keys: VcenterKeys,
        *,
        gcp: KeySource | None = None,
        azure: tuple[list[x509.Certificate], list[x509.Certificate]] | None = None,
        ec2: Ec2TrustStore | None = None,
    ) -> None:
        self._settings = settings
        self._vcenter_keys = vcenter_keys
        self._gcp = gcp
        self._azure = azure
        self._ec2 = ec2

    async def verify(self, identity: Identity, claimed_key: str, nonce: str | None) -> str:
        """The verified ``{cloud account}/{instance id}``; refused unless it is ``claimed_key``."""
        if isinstance(identity, VmwareIdentity):
            verified = await self._vmware(identity)
        else:
            # Signature checks are CPU work and a cold GCP key set is a download: off the loop.
            verified = await asyncio.to_thread(self._verify_sync, identity, nonce)
        if verified != claimed_key:
            raise IdentityRefused(ErrorType.IDENTITY_INSTANCE_MISMATCH, "the signed identity names another instance")
        return verified

    def _verify_sync(self, identity: Identity, nonce: str | None) -> str:
        now = datetime.now(UTC)
        if isinstance(identity, GcpIdentity):
            gcp = self._settings.gcp
            if self._gcp is None:
                self._gcp = gcp_keys(self._settings)
            v = verify_gcp_token(identity.token, keys=self._gcp, audience=gcp.audience, now=now, max_age=gcp.max_token_age)
        elif isinstance(identity, AzureIdentity):
            azure = self._settings.azure
            if self._azure is None:
                self._azure = trust_from_settings(azure.roots_file, azure.intermediates_file)
            roots, intermediates = self._azure
            v = verify_azure_attested(
                identity.attested.model_dump(), nonce=nonce, roots=roots, intermediates=intermediates, now=now,
                allowed_san_domains=azure.allowed_san_domains, max_age=azure.max_document_age,
            )
        else:
            assert isinstance(identity, AwsIdentity)
            ec2 = self._settings.ec2
            if self._ec2 is None:
                self._ec2 = Ec2TrustStore.from_settings(ec2.certs_dir)
            v = verify_ec2_identity(
                {"rsa2048": identity.rsa2048}, trust=self._ec2, now=now,
                accepted_forms=frozenset(ec2.accepted_forms), max_age=ec2.max_document_age,
            )
        return instance_key(v.cloud_account, v.instance_id)

    async def _vmware(self, identity: VmwareIdentity) -> str:
        # The token names its link (a vCenter shared by several customers has one per folder or
        # pool): that link's keys verify it, and the token must name that link of its vCenter.
        link, _ = peek_vcenter_token(identity.token)
        keys = await self._vcenter_keys(link)
        if not keys:
            # An unlinked vCenter and a linked one without keys look the same to the caller.
            raise IdentityRefused(ErrorType.IDENTITY_KEY_UNKNOWN, "no token keys are known for that vCenter link")
        token = verify_token(identity.token, public_keys=keys, vcenter_id=vcenter_of(link), link=link, now=datetime.now(UTC))
        return instance_key(token.link, token.instance_uuid)

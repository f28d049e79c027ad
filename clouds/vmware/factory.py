"""Entry points for the vmware worker: a client per vCenter from settings, verify, read metadata.

Settings are passed in, never read here. Each call opens its own vCenter session and closes it
(vCenter ends idle sessions, so a worker does not keep one for hours).

The routing rule for callers: read the link id from the token with ``peek_vcenter_token``, look
up THAT link (its public keys, its scope), and pass both here. ``verify_vmware_identity`` then
requires the token to name that link of that vCenter and its signature to be one of those keys.
Every entry point takes a link id (``vc01`` or ``vc01:acme``, ``contracts.vcenter_links``) where it
names a cloud account, and connects to the vCenter the link id names.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pyVim.connect import SmartConnect

from clouds.vmware.vsphere import VcenterEndpoint, VsphereClient
from config.settings import VmwareSettings
from contracts.errors import ErrorType, IdentityRefused
from contracts.identity import VerifiedIdentity
from contracts.models import VmMetadata
from contracts.vcenter_links import vcenter_of


def client_for(
    settings: VmwareSettings, vcenter_id: str, *, connect: Callable[..., Any] = SmartConnect
) -> VsphereClient:
    """A client for a configured vCenter (named by its id or by a link id of it);
    ``IdentityVCenterUnknown`` when none is configured."""
    vcenter_id = vcenter_of(vcenter_id)
    endpoint = VcenterEndpoint.from_settings(settings, vcenter_id)
    if endpoint is None:
        raise IdentityRefused(
            ErrorType.IDENTITY_VCENTER_UNKNOWN, f"fleetpatch has no connection to vCenter {vcenter_id!r}"
        )
    return VsphereClient(endpoint, connect=connect)


def verify_vmware_identity(
    identity: dict[str, Any],
    *,
    vcenter_id: str,
    public_keys: list[str],
    settings: VmwareSettings,
    now: datetime,
    connect: Callable[..., Any] = SmartConnect,
    scope: str | None = None,
    link: str | None = None,
) -> VerifiedIdentity:
    """Verify ``{"token", "bios_uuid"}`` as sent by a VM under ``link`` (default: the link named by
    the vCenter; see ``identity.py`` for the checks)."""
    if not isinstance(identity, dict):
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "the vmware identity is not an object")
    token, bios_uuid = identity.get("token"), identity.get("bios_uuid")
    if token is None or bios_uuid is None:
        raise IdentityRefused(ErrorType.IDENTITY_CLAIMS_MISSING, "token and bios_uuid are required")
    with client_for(settings, vcenter_id, connect=connect) as client:
        return client.verify_vm_identity(
            token, bios_uuid, vcenter_id=vcenter_id, public_keys=public_keys, now=now, scope=scope, link=link
        )


def read_vm_metadata(
    identity: VerifiedIdentity,
    settings: VmwareSettings,
    *,
    connect: Callable[..., Any] = SmartConnect,
) -> VmMetadata:
    """The verified VM as its vCenter describes it (custom attributes as labels, power state)."""
    with client_for(settings, identity.cloud_account, connect=connect) as client:
        vm = client.get_vm_by_instance_uuid(identity.instance_id)
        return client.vm_metadata(vm, identity.cloud_account)


def list_vms(
    settings: VmwareSettings, vcenter_id: str, *, connect: Callable[..., Any] = SmartConnect, scope: str | None = None
) -> list[VmMetadata]:
    """Every VM (not template) of the vCenter, or of the link's folder or resource pool, read
    through one container view."""
    with client_for(settings, vcenter_id, connect=connect) as client:
        return client.list_vm_metadata(vcenter_id, scope)

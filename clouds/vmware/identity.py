"""VM identity on vCenter: verify a presented token against the VM, and issue tokens to VMs.

Mixed into ``VsphereClient`` (vsphere.py), whose VM operations it uses.

``verify_vm_identity`` accepts a VM only when all of these hold:

1. the token verifies for this link of this vCenter (token.py: signature, algorithm, times, ``vc``,
   ``link``): a token issued under another link of the same vCenter is refused;
2. a VM with the token's instanceUuid exists in this vCenter. If none does, the refusal is
   ``InstanceRefused(InstanceNotFound)``: the token is genuine but names a VM that is gone
   (deleted or unregistered), which is a fact about the inventory, not a forged identity;
3. that VM still holds THIS very token in ``guestinfo.fleetpatch.token`` (constant-time
   comparison). A token copied into another VM, or superseded by a newer token, refuses with
   ``IdentityTokenMismatch``. This is what makes a stolen token useless once re-issued, and
   binds the token to the VM vCenter wrote it to;
4. the BIOS UUID the guest reports maps to the VM's ``config.uuid`` (either byte order of the
   first three fields, biosuuid.py); else ``IdentityInstanceMismatch``;
5. when the link is scoped to a folder or resource pool (a vCenter shared by several customers),
   the VM is inside it, at any depth; else ``IdentityOutOfScope``.

``issue_tokens`` and ``ensure_tokens`` write tokens only to labelled VMs inside that scope, each
token naming the link it was issued under. Links are named by their id (``vc01`` or ``vc01:acme``,
``contracts.vcenter_links``); the verified identity's cloud account is that link id.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from clouds.vmware.biosuuid import bios_uuid_matches
from clouds.vmware.token import GUESTINFO_TOKEN_KEY, issue_token, verify_token
from contracts.vcenter_links import vcenter_of
from contracts.errors import ErrorType, IdentityRefused, InstanceRefused
from contracts.identity import VerifiedIdentity
from contracts.providers import Provider

if TYPE_CHECKING:
    from clouds.vmware.vsphere import VmFacts

DEFAULT_PATCHING_LABEL = "rackspace-addon-patching"


class VcenterIdentityMixin:
    """Token issuing and identity verification on top of the client's VM operations."""

    # Provided by VsphereClient.
    def find_vm_by_instance_uuid(self, instance_uuid: str) -> Any | None: ...  # pragma: no cover
    def vm_facts(self, vm: Any) -> VmFacts: ...  # pragma: no cover
    def all_vms(self) -> list[VmFacts]: ...  # pragma: no cover
    def custom_field_names(self) -> dict[int, str]: ...  # pragma: no cover
    def write_token(self, vm: Any, token: str) -> None: ...  # pragma: no cover
    def vms_in_scope(self, scope: str | None) -> list[VmFacts]: ...  # pragma: no cover

    def verify_vm_identity(
        self,
        token: object,
        bios_uuid: object,
        *,
        vcenter_id: str,
        public_keys: list[str],
        now: datetime,
        scope: str | None = None,
        link: str | None = None,
    ) -> VerifiedIdentity:
        """Prove that the caller is the VM the token names, under ``link`` (default: the link named
        by the vCenter; see the module docstring).

        Raises IdentityRefused for a bad token or a mismatch, InstanceRefused(InstanceNotFound)
        when the named VM is gone, and TransientCloudError / VcenterAuthError from vCenter.
        """
        verified = verify_token(token, public_keys=public_keys, vcenter_id=vcenter_id, now=now, link=link)
        assert isinstance(token, str)  # verify_token refuses anything else
        if not isinstance(bios_uuid, str):
            raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "bios_uuid is not a string")
        vm = self.find_vm_by_instance_uuid(verified.instance_uuid)
        if vm is None:
            raise InstanceRefused(
                ErrorType.INSTANCE_NOT_FOUND,
                f"vCenter {vcenter_id} has no VM with instanceUuid {verified.instance_uuid}",
            )
        facts = self.vm_facts(vm)
        if facts.instance_uuid.lower() != verified.instance_uuid.lower():
            raise IdentityRefused(
                ErrorType.IDENTITY_INSTANCE_MISMATCH, "vCenter returned a VM with another instanceUuid"
            )
        held = facts.extra_config.get(GUESTINFO_TOKEN_KEY)
        if held is None or not hmac.compare_digest(held.encode(), token.encode()):
            raise IdentityRefused(
                ErrorType.IDENTITY_TOKEN_MISMATCH,
                "the VM does not hold this token (copied from another VM, or replaced since)",
            )
        if not bios_uuid_matches(facts.bios_uuid, bios_uuid):
            raise IdentityRefused(
                ErrorType.IDENTITY_INSTANCE_MISMATCH,
                "the BIOS UUID the guest reports is not the VM's BIOS UUID",
            )
        if scope and all(f.instance_uuid.lower() != facts.instance_uuid.lower() for f in self.vms_in_scope(scope)):
            raise IdentityRefused(ErrorType.IDENTITY_OUT_OF_SCOPE, f"the VM is not inside {scope}, the link's folder or pool")
        return VerifiedIdentity(
            provider=Provider.VMWARE,
            cloud_account=verified.link,
            instance_id=facts.instance_uuid,
            issued_at=verified.issued_at,
            instance_name=facts.name,
            evidence={
                "jti": verified.jti,
                "alg": verified.alg,
                "key_fingerprint": verified.key_fingerprint,
                "customer": verified.customer,
                "expires_at": verified.expires_at.isoformat(),
            },
        )

    def issue_tokens(
        self,
        link_id: str,
        customer: str,
        private_pem: str,
        *,
        label_name: str = DEFAULT_PATCHING_LABEL,
        now: datetime,
        ttl: timedelta,
        scope: str | None = None,
    ) -> list[tuple[str, str]]:
        """Write a fresh token, under link ``link_id``, to every VM whose custom attribute
        ``label_name`` is ``true``.

        Only VMs inside ``scope`` (a folder or resource pool) when given.
        Returns ``(vm name, instance uuid)`` of each VM written, sorted by name. Templates and
        VMs without an instanceUuid are skipped. The label value must be exactly ``true``, the
        same rule enrollment applies. Writing a new token supersedes the VM's previous one.
        """
        names = self.custom_field_names()
        keys = {k for k, n in names.items() if n == label_name}
        issued: list[tuple[str, str]] = []
        for facts in self.vms_in_scope(scope):
            if facts.template or not facts.instance_uuid:
                continue
            if not any(facts.custom_values.get(k) == "true" for k in keys):
                continue
            token = issue_token(
                private_pem,
                vcenter_id=vcenter_of(link_id),
                instance_uuid=facts.instance_uuid,
                customer=customer,
                now=now,
                ttl=ttl,
                link=link_id,
            )
            self.write_token(facts.vm, token)
            issued.append((facts.name, facts.instance_uuid))
        return issued

    def ensure_tokens(
        self,
        link_id: str,
        customer: str,
        private_pem: str,
        *,
        public_keys: list[str],
        label_name: str = DEFAULT_PATCHING_LABEL,
        now: datetime,
        ttl: timedelta,
        renew_before: timedelta,
        scope: str | None = None,
    ) -> tuple[list[tuple[str, str]], int]:
        """Issue a token to each labelled VM that lacks a valid one, or whose token expires within
        ``renew_before``; ``(issued (name, uuid), kept)``. A token is valid only when it verifies
        with ``public_keys``, names this link, this VM and this customer: anything else is replaced. Only VMs inside
        ``scope`` (the link's folder or resource pool), when given, get tokens."""
        names = self.custom_field_names()
        keys = {k for k, n in names.items() if n == label_name}
        issued: list[tuple[str, str]] = []
        kept = 0
        for facts in self.vms_in_scope(scope):
            if facts.template or not facts.instance_uuid:
                continue
            if not any(facts.custom_values.get(k) == "true" for k in keys):
                continue
            current = facts.extra_config.get(GUESTINFO_TOKEN_KEY)
            if self._still_good(current, facts, link_id, customer, public_keys, now + renew_before):
                kept += 1
                continue
            token = issue_token(private_pem, vcenter_id=vcenter_of(link_id), instance_uuid=facts.instance_uuid,
                                customer=customer, now=now, ttl=ttl, link=link_id)
            self.write_token(facts.vm, token)
            issued.append((facts.name, facts.instance_uuid))
        return issued, kept

    @staticmethod
    def _still_good(
        token: str | None, facts: VmFacts, link_id: str, customer: str, public_keys: list[str], until: datetime
    ) -> bool:
        if not token or not public_keys:
            return False
        try:
            verified = verify_token(token, public_keys=public_keys, vcenter_id=vcenter_of(link_id), now=until,
                                    leeway=timedelta(0), link=link_id)
        except IdentityRefused:
            return False  # expired by then, forged, or signed with a retired key
        return verified.instance_uuid.lower() == facts.instance_uuid.lower() and verified.customer == customer

    def replace_token(
        self, link_id: str, instance_uuid: str, customer: str, private_pem: str, *, now: datetime, ttl: timedelta
    ) -> None:
        """A fresh token (under link ``link_id``) for one VM: the one it enrolled with is superseded
        and enrolls nothing."""
        vm = self.get_vm_by_instance_uuid(instance_uuid)
        self.write_token(vm, issue_token(private_pem, vcenter_id=vcenter_of(link_id), instance_uuid=instance_uuid,
                                         customer=customer, now=now, ttl=ttl, link=link_id))

"""VM identity on vCenter: verify a presented token against the VM, and issue tokens to VMs.

Mixed into ``VsphereClient`` (vsphere.py), whose VM operations it uses.

``verify_vm_identity`` accepts a VM only when all of these hold:

1. the token verifies for this vCenter (token.py: signature, algorithm, times, ``vc``);
2. a VM with the token's instanceUuid exists in this vCenter. If none does, the refusal is
   ``InstanceRefused(InstanceNotFound)``: the token is genuine but names a VM that is gone
   (deleted or unregistered), which is a fact about the inventory, not a forged identity;
3. that VM still holds THIS very token in ``guestinfo.fleetpatch.token`` (constant-time
   comparison). A token copied into another VM, or superseded by a newer token, refuses with
   ``IdentityTokenMismatch``. This is what makes a stolen token useless once re-issued, and
   binds the token to the VM vCenter wrote it to;
4. the token's id is not among the ids the VM has already enrolled with
   (``fleetpatch.usedTokenIds``, an extraConfig key outside ``guestinfo.*``, so the guest cannot
   write it); else ``IdentityTokenUsed``. A token enrolls once: ``retire_token`` records its id
   first and then writes a fresh token, so a replay is refused even before the replacement lands;
5. the BIOS UUID the guest reports maps to the VM's ``config.uuid`` (either byte order of the
   first three fields, biosuuid.py); else ``IdentityInstanceMismatch``;
6. when the link is scoped to a folder or resource pool (a vCenter shared by several customers),
   the VM is inside it; else ``IdentityOutOfScope``.

``issue_tokens`` writes tokens only to labelled VMs inside the scope, and only where the VM holds
no valid token for this customer that lives longer than ``rotate_before`` (``force`` rewrites all).
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from clouds.vmware.biosuuid import bios_uuid_matches
from clouds.vmware.token import GUESTINFO_TOKEN_KEY, issue_token, verify_token
from contracts.errors import ErrorType, IdentityRefused, InstanceRefused
from contracts.identity import VerifiedIdentity
from contracts.providers import Provider

if TYPE_CHECKING:
    from clouds.vmware.vsphere import VmFacts

DEFAULT_PATCHING_LABEL = "rackspace-addon-patching"
#: The ids of tokens that already enrolled this VM, space separated, newest last. Not a
#: ``guestinfo.*`` key: only vCenter (fleetpatch's account), never the guest, can write it.
USED_TOKENS_KEY = "fleetpatch.usedTokenIds"
#: How many used token ids a VM remembers (older ones are long expired).
MAX_USED_TOKENS = 16


class VcenterIdentityMixin:
    """Token issuing and identity verification on top of the client's VM operations."""

    # Provided by VsphereClient.
    def find_vm_by_instance_uuid(self, instance_uuid: str) -> Any | None: ...  # pragma: no cover
    def vm_facts(self, vm: Any) -> VmFacts: ...  # pragma: no cover
    def all_vms(self) -> list[VmFacts]: ...  # pragma: no cover
    def custom_field_names(self) -> dict[int, str]: ...  # pragma: no cover
    def write_token(self, vm: Any, token: str) -> None: ...  # pragma: no cover
    def write_extra_config(self, vm: Any, key: str, value: str) -> None: ...  # pragma: no cover
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
    ) -> VerifiedIdentity:
        """Prove that the caller is the VM the token names (see the module docstring).

        Raises IdentityRefused for a bad token or a mismatch, InstanceRefused(InstanceNotFound)
        when the named VM is gone, and TransientCloudError / VcenterAuthError from vCenter.
        """
        verified = verify_token(token, public_keys=public_keys, vcenter_id=vcenter_id, now=now)
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
        if verified.jti in used_token_ids(facts.extra_config):
            raise IdentityRefused(ErrorType.IDENTITY_TOKEN_USED, "this token has already enrolled its VM")
        if not bios_uuid_matches(facts.bios_uuid, bios_uuid):
            raise IdentityRefused(
                ErrorType.IDENTITY_INSTANCE_MISMATCH,
                "the BIOS UUID the guest reports is not the VM's BIOS UUID",
            )
        if scope and all(f.instance_uuid != facts.instance_uuid for f in self.vms_in_scope(scope)):
            raise IdentityRefused(ErrorType.IDENTITY_OUT_OF_SCOPE, f"the VM is not inside {scope}")
        return VerifiedIdentity(
            provider=Provider.VMWARE,
            cloud_account=vcenter_id,
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
        vcenter_id: str,
        customer: str,
        private_pem: str,
        *,
        label_name: str = DEFAULT_PATCHING_LABEL,
        now: datetime,
        ttl: timedelta,
        scope: str | None = None,
        rotate_before: timedelta | None = None,
        public_keys: list[str] | None = None,
    ) -> list[tuple[str, str]]:
        """Write a fresh token to every VM in ``scope`` whose custom attribute ``label_name`` is ``true``.

        With ``rotate_before`` (and the vCenter's ``public_keys``), a VM keeps a token that
        verifies, names ``customer`` and lives longer than ``rotate_before``; without it every
        labelled VM gets a new one (the manual trigger). Returns ``(vm name, instance uuid)`` of
        each VM written, sorted by name. Templates and VMs without an instanceUuid are skipped;
        the label value must be exactly ``true``, the same rule enrollment applies.
        """
        names = self.custom_field_names()
        keys = {k for k, n in names.items() if n == label_name}
        issued: list[tuple[str, str]] = []
        for facts in self.vms_in_scope(scope):
            if facts.template or not facts.instance_uuid:
                continue
            if not any(facts.custom_values.get(k) == "true" for k in keys):
                continue
            if rotate_before is not None and _still_good(facts, vcenter_id, customer, public_keys or [], now, rotate_before):
                continue
            token = issue_token(
                private_pem, vcenter_id=vcenter_id, instance_uuid=facts.instance_uuid, customer=customer, now=now, ttl=ttl
            )
            self.write_token(facts.vm, token)
            issued.append((facts.name, facts.instance_uuid))
        return issued

    def retire_token(
        self, instance_uuid: str, jti: str, *, vcenter_id: str, customer: str, private_pem: str, now: datetime, ttl: timedelta
    ) -> bool:
        """After an enrollment: remember the used token's id, then give the VM a fresh token.

        Idempotent (an activity retry records the id once). False when the VM is gone.
        """
        vm = self.find_vm_by_instance_uuid(instance_uuid)
        if vm is None:
            return False
        facts = self.vm_facts(vm)
        used = used_token_ids(facts.extra_config)
        if jti not in used:
            used = (used + [jti])[-MAX_USED_TOKENS:]
            self.write_extra_config(vm, USED_TOKENS_KEY, " ".join(used))
        token = issue_token(private_pem, vcenter_id=vcenter_id, instance_uuid=facts.instance_uuid, customer=customer, now=now, ttl=ttl)
        self.write_token(vm, token)
        return True


def used_token_ids(extra_config: dict[str, str]) -> list[str]:
    """The ids of the tokens that already enrolled a VM (from its extraConfig)."""
    return extra_config.get(USED_TOKENS_KEY, "").split()


def _still_good(
    facts: VmFacts, vcenter_id: str, customer: str, public_keys: list[str], now: datetime, rotate_before: timedelta
) -> bool:
    """Whether the VM's current token verifies, names this customer, is unused and outlives ``rotate_before``."""
    held = facts.extra_config.get(GUESTINFO_TOKEN_KEY)
    if not held or not public_keys:
        return False
    try:
        verified = verify_token(held, public_keys=public_keys, vcenter_id=vcenter_id, now=now, leeway=timedelta(0))
    except IdentityRefused:
        return False
    return (
        verified.instance_uuid.lower() == facts.instance_uuid.lower()
        and verified.customer == customer
        and verified.jti not in used_token_ids(facts.extra_config)
        and verified.expires_at - now > rotate_before
    )

"""vCenter activities (vmware worker): verify fleetpatch-issued tokens against the live VM (inside
the link's folder or resource pool, when it has one), issue and rotate them, replace a used one.

A cloud account here is a vmware link id (``vc01`` or ``vc01:acme`` on a vCenter shared by several
customers, ``contracts.vcenter_links``): the connection and the signing key are the vCenter's."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from clouds.vmware import factory
from clouds.vmware.token import peek_vcenter_token
from config.settings import VmwareSettings
from contracts.errors import ErrorType, FleetpatchError, IdentityRefused
from contracts.identity import VerifiedIdentity
from contracts.models import ActivityName, VerifyIdentityInput, VmMetadata, VmMetadataInput
from contracts.reconcile import ListCloudVmsInput, ListCloudVmsResult
from contracts.vcenter_links import vcenter_of
from contracts.vcenter_tokens import ReplaceTokenInput, VcenterTokensInput, VcenterTokensResult


class VmwareActivities:
    def __init__(self, settings: VmwareSettings) -> None:
        self._settings = settings

    @activity.defn(name=ActivityName.VERIFY_IDENTITY)
    def verify_identity(self, inp: VerifyIdentityInput) -> VerifiedIdentity:
        token = inp.identity.get("token")
        if not isinstance(token, str):
            raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "a vmware identity is {\"token\", \"bios_uuid\"}")
        if not inp.vcenter_public_keys:
            raise IdentityRefused(ErrorType.IDENTITY_KEY_UNKNOWN, "the vCenter's link holds no token keys")
        # The link the token names; the workflow looked up that same link (its keys and scope, from
        # the instance key the API read from this token) and requires the verified link to be it.
        link, _ = peek_vcenter_token(token)
        return factory.verify_vmware_identity(
            inp.identity,
            vcenter_id=vcenter_of(link),
            link=link,
            public_keys=inp.vcenter_public_keys,
            settings=self._settings,
            now=datetime.now(UTC),
            scope=inp.vcenter_scope,
        )

    @activity.defn(name=ActivityName.READ_VM_METADATA)
    def read_vm_metadata(self, inp: VmMetadataInput) -> VmMetadata:
        return factory.read_vm_metadata(inp.identity, self._settings)

    @activity.defn(name=ActivityName.LIST_CLOUD_VMS)
    def list_cloud_vms(self, inp: ListCloudVmsInput) -> ListCloudVmsResult:
        return ListCloudVmsResult(vms=factory.list_vms(self._settings, inp.cloud_account, scope=inp.scope))

    def _signing_key(self, link_id: str) -> str:
        vcenter_id = vcenter_of(link_id)
        configured = self._settings.vcenters.get(vcenter_id)
        if configured is None or configured.signing_key_file is None:
            raise FleetpatchError(ErrorType.CONFIGURATION_INVALID, f"vCenter {vcenter_id!r} has no signing_key_file")
        return configured.signing_key_file.read_text()

    @activity.defn(name=ActivityName.ENSURE_VCENTER_TOKENS)
    def ensure_vcenter_tokens(self, inp: VcenterTokensInput) -> VcenterTokensResult:
        private_pem = self._signing_key(inp.vcenter_id)
        # renew_all: a margin of a whole lifetime renews every token (an operator's manual run).
        renew_before = self._settings.token_ttl if inp.renew_all else self._settings.token_renew_before
        with factory.client_for(self._settings, inp.vcenter_id) as client:
            issued, kept = client.ensure_tokens(
                inp.vcenter_id, inp.customer, private_pem, public_keys=inp.public_keys, label_name=inp.patching_label,
                now=datetime.now(UTC), ttl=self._settings.token_ttl, renew_before=renew_before,
                scope=inp.scope,
            )
        return VcenterTokensResult(issued=[f"{name} ({uuid})" for name, uuid in issued], kept=kept)

    @activity.defn(name=ActivityName.REPLACE_VCENTER_TOKEN)
    def replace_vcenter_token(self, inp: ReplaceTokenInput) -> None:
        private_pem = self._signing_key(inp.vcenter_id)
        with factory.client_for(self._settings, inp.vcenter_id) as client:
            client.replace_token(inp.vcenter_id, inp.instance_uuid, inp.customer, private_pem,
                                 now=datetime.now(UTC), ttl=self._settings.token_ttl)

    def all(self) -> list:
        return [
            self.verify_identity, self.read_vm_metadata, self.list_cloud_vms,
            self.ensure_vcenter_tokens, self.replace_vcenter_token,
        ]

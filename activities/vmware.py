"""vCenter activities (vmware worker): verify fleetpatch-issued tokens against the live VM."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from clouds.vmware import factory
from clouds.vmware.token import peek_vcenter_token
from config.settings import VmwareSettings
from contracts.errors import ErrorType, IdentityRefused
from contracts.identity import VerifiedIdentity
from contracts.models import ActivityName, VerifyIdentityInput, VmMetadata, VmMetadataInput
from contracts.reconcile import ListCloudVmsInput, ListCloudVmsResult


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
        vcenter_id, _ = peek_vcenter_token(token)
        return factory.verify_vmware_identity(
            inp.identity,
            vcenter_id=vcenter_id,
            public_keys=inp.vcenter_public_keys,
            settings=self._settings,
            now=datetime.now(UTC),
        )

    @activity.defn(name=ActivityName.READ_VM_METADATA)
    def read_vm_metadata(self, inp: VmMetadataInput) -> VmMetadata:
        return factory.read_vm_metadata(inp.identity, self._settings)

    @activity.defn(name=ActivityName.LIST_CLOUD_VMS)
    def list_cloud_vms(self, inp: ListCloudVmsInput) -> ListCloudVmsResult:
        return ListCloudVmsResult(vms=factory.list_vms(self._settings, inp.cloud_account))

    def all(self) -> list:
        return [self.verify_identity, self.read_vm_metadata, self.list_cloud_vms]

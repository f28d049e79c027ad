"""GCP activities (gcp worker): verify instance identity tokens, read VM labels."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from clouds.gcp.compute import GceInstances
from clouds.gcp.factory import gce_instances_from_settings, key_source_from_settings
from clouds.gcp.jwks import KeySource
from clouds.gcp.verify import verify_gcp_token
from config.settings import GcpSettings
from contracts.errors import ErrorType, IdentityRefused
from contracts.identity import VerifiedIdentity
from contracts.models import ActivityName, VerifyIdentityInput, VmMetadata, VmMetadataInput
from contracts.reconcile import ListCloudVmsInput, ListCloudVmsResult


class GcpActivities:
    def __init__(self, settings: GcpSettings, keys: KeySource | None = None, instances: GceInstances | None = None) -> None:
        self._settings = settings
        self._keys = keys or key_source_from_settings(settings)
        # Built on first use: a worker without Compute credentials still starts, answers doctor,
        # and refuses metadata reads with a clear configuration error.
        self._instances = instances

    @activity.defn(name=ActivityName.VERIFY_IDENTITY)
    def verify_identity(self, inp: VerifyIdentityInput) -> VerifiedIdentity:
        token = inp.identity.get("token")
        if not isinstance(token, str):
            raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "a gcp identity is {\"token\": \"<JWT>\"}")
        return verify_gcp_token(
            token,
            keys=self._keys,
            audience=self._settings.audience,
            now=datetime.now(UTC),
            max_age=self._settings.max_token_age,
        )

    @activity.defn(name=ActivityName.READ_VM_METADATA)
    def read_vm_metadata(self, inp: VmMetadataInput) -> VmMetadata:
        if self._instances is None:
            self._instances = gce_instances_from_settings(self._settings)
        return self._instances.read_vm_metadata(inp.identity)

    @activity.defn(name=ActivityName.LIST_CLOUD_VMS)
    def list_cloud_vms(self, inp: ListCloudVmsInput) -> ListCloudVmsResult:
        if self._instances is None:
            self._instances = gce_instances_from_settings(self._settings)
        return ListCloudVmsResult(vms=self._instances.list_vms(inp.cloud_account))

    def all(self) -> list:
        return [self.verify_identity, self.read_vm_metadata, self.list_cloud_vms]

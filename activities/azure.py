"""Azure activities (azure worker): verify IMDS attested documents, read VM tags through ARM."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509
from temporalio import activity

from clouds.azure.arm import AzureVms, compute_client_factory
from clouds.azure.nonce import check_nonce
from clouds.azure.verify import trust_from_settings, verify_azure_attested
from config.settings import AzureSettings
from contracts.errors import ErrorType, FleetpatchError, IdentityRefused
from contracts.identity import VerifiedIdentity
from contracts.models import ActivityName, VerifyIdentityInput, VmMetadata, VmMetadataInput
from contracts.reconcile import ListCloudVmsInput, ListCloudVmsResult


class AzureActivities:
    def __init__(
        self,
        settings: AzureSettings,
        challenge_key: bytes | None,
        vms: AzureVms | None = None,
        trust: tuple[list[x509.Certificate], list[x509.Certificate]] | None = None,
    ) -> None:
        self._settings = settings
        self._challenge_key = challenge_key
        self._vms = vms or AzureVms(compute_client_factory(settings))
        self._roots, self._intermediates = trust or trust_from_settings(settings.roots_file, settings.intermediates_file)

    @activity.defn(name=ActivityName.VERIFY_IDENTITY)
    def verify_identity(self, inp: VerifyIdentityInput) -> VerifiedIdentity:
        attested = inp.identity.get("attested")
        if not isinstance(attested, dict):
            raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "an azure identity carries the IMDS document in 'attested'")
        if self._challenge_key is None:
            raise FleetpatchError(ErrorType.CONFIGURATION_INVALID, "no challenge key: set FLEETPATCH_API__CHALLENGE_KEY")
        now = datetime.now(UTC)
        if not inp.nonce:
            raise IdentityRefused(ErrorType.IDENTITY_NONCE_MISMATCH, "no nonce: get one from GET /v1/challenge")
        check_nonce(self._challenge_key, inp.nonce, now)  # issued by us, unexpired
        return verify_azure_attested(
            attested,
            nonce=inp.nonce,
            roots=self._roots,
            intermediates=self._intermediates,
            now=now,
            allowed_san_domains=self._settings.allowed_san_domains,
            max_age=self._settings.max_document_age,
        )

    @activity.defn(name=ActivityName.READ_VM_METADATA)
    def read_vm_metadata(self, inp: VmMetadataInput) -> VmMetadata:
        if not inp.resource_id:
            raise IdentityRefused(ErrorType.IDENTITY_CLAIMS_MISSING, "an azure registration names its VM's resource_id")
        if not inp.identity.cloud_account:
            # Never read ARM by the caller's resource id alone: the tenant must be attested.
            raise IdentityRefused(ErrorType.IDENTITY_CLAIMS_MISSING, "the attested document has no subscriptionId")
        return self._vms.get_vm(
            inp.resource_id,
            inp.identity.instance_id,
            expected_subscription_id=inp.identity.cloud_account,
        )

    @activity.defn(name=ActivityName.LIST_CLOUD_VMS)
    def list_cloud_vms(self, inp: ListCloudVmsInput) -> ListCloudVmsResult:
        return ListCloudVmsResult(vms=self._vms.list_vms(inp.cloud_account))

    def all(self) -> list:
        return [self.verify_identity, self.read_vm_metadata, self.list_cloud_vms]

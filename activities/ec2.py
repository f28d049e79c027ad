"""EC2 activities (ec2 worker): verify instance identity documents, read and write instance tags."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from clouds.ec2.instances import Ec2Instances
from clouds.ec2.verify import Ec2TrustStore, verify_ec2_identity
from config.settings import Settings
from contracts.enrollment import Ec2TagInput, Ec2UntagInput
from contracts.identity import VerifiedIdentity
from contracts.models import ActivityName, VerifyIdentityInput, VmMetadata, VmMetadataInput
from contracts.reconcile import ListCloudVmsInput, ListCloudVmsResult


class Ec2Activities:
    def __init__(self, settings: Settings, instances: Ec2Instances | None = None, trust: Ec2TrustStore | None = None) -> None:
        self._settings = settings.ec2
        self._region = settings.aws.region
        self._instances = instances or Ec2Instances.from_settings(settings)
        self._trust = trust or Ec2TrustStore.from_settings(settings.ec2.certs_dir)

    @activity.defn(name=ActivityName.VERIFY_IDENTITY)
    def verify_identity(self, inp: VerifyIdentityInput) -> VerifiedIdentity:
        return verify_ec2_identity(
            inp.identity,
            trust=self._trust,
            now=datetime.now(UTC),
            accepted_forms=frozenset(self._settings.accepted_forms),
            max_age=self._settings.max_document_age,
        )

    @activity.defn(name=ActivityName.READ_VM_METADATA)
    def read_vm_metadata(self, inp: VmMetadataInput) -> VmMetadata:
        identity = inp.identity
        return self._instances.describe(
            identity.cloud_account,
            identity.region or self._region,
            identity.instance_id,
            inp.role_arn,
            external_id=inp.external_id,
        )

    @activity.defn(name=ActivityName.TAG_EC2_INSTANCE)
    def tag_ec2_instance(self, inp: Ec2TagInput) -> None:
        self._instances.tag_instance(
            inp.account_id, inp.region, inp.instance_id, inp.role_arn, inp.tags, external_id=inp.external_id
        )

    @activity.defn(name=ActivityName.UNTAG_EC2_INSTANCE)
    def untag_ec2_instance(self, inp: Ec2UntagInput) -> None:
        self._instances.untag_instance(
            inp.account_id, inp.region, inp.instance_id, inp.role_arn, inp.keys, external_id=inp.external_id
        )

    @activity.defn(name=ActivityName.LIST_CLOUD_VMS)
    def list_cloud_vms(self, inp: ListCloudVmsInput) -> ListCloudVmsResult:
        vms = []
        for region in inp.regions or self._settings.regions or [self._region]:
            vms += self._instances.list_instances(inp.cloud_account, region, inp.role_arn, external_id=inp.external_id)
        return ListCloudVmsResult(vms=vms)

    def all(self) -> list:
        return [
            self.verify_identity, self.read_vm_metadata, self.tag_ec2_instance, self.untag_ec2_instance, self.list_cloud_vms,
        ]

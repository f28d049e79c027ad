"""Creating the simulated VMs in the local clouds, each through its real API and SDK.

- GCP: google-cloud-compute ``InstancesClient.insert`` (labels) into the customer's project;
- Azure: azure-mgmt-compute ``virtual_machines.begin_create_or_update`` (tags) into the customer's
  subscription, authenticated with the local cloud's managed identity (azure-identity);
- EC2: boto3 ``RunInstances`` (tags) in the customer's AWS account (credentials from STS
  AssumeRole into it, as the customer's own administrator would have);
- vCenter: pyvmomi ``CloneVM_Task`` of vcsim's first VM, powered on, custom attributes set, then
  a fleetpatch token written with the product's issuer (``clouds.vmware.token.issue_token`` +
  ``VsphereClient.write_token``, what ``fleetpatch vcenter issue-tokens`` does) for that VM only,
  so VMs enrolling meanwhile keep their tokens.

Every method blocks (SDK calls); the fleet host runs them on its thread pool. Each returns where
the VM's metadata service is (``metadata_url``) and the ids that make its instance key.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
import httpx

from contracts.identity import instance_key
from contracts.providers import OsFamily, Provider
from localclouds.fleet.customers import (
    AZURE_LOCATION,
    AZURE_RESOURCE_GROUP,
    GCP_ZONE,
    VmPlan,
)

EC2_AMI = "ami-12c6146b"
VCSIM_TEMPLATE = "DC0_H0_VM0"
TOKEN_TTL = timedelta(hours=24)
_PATIENT = Config(retries={"mode": "standard", "max_attempts": 12})


@dataclass(frozen=True)
class CreatedVm:
    provider: Provider
    name: str
    cloud_account: str
    instance_id: str
    metadata_url: str
    extra: dict[str, str] = field(default_factory=dict)  # guest_tools_url, bios_uuid, region

    @property
    def instance_key(self) -> str:
        return instance_key(self.cloud_account, self.instance_id)


class Endpoints:
    """The local clouds and the API, as ``.fleetpatch/local.json`` describes them."""

    def __init__(self, local: dict[str, Any]) -> None:
        self.local = local
        missing = [k for k in ("api", "aws", "gcp", "azure", "ec2", "vcenter") if k not in local]
        if missing:
            raise LookupError(f"local.json lacks {', '.join(missing)}: is `fleetpatch up` running?")

    @property
    def api(self) -> str:
        return str(self.local["api"]).rstrip("/")

    @property
    def aws(self) -> str:
        return str(self.local["aws"])

    @property
    def region(self) -> str:
        return str(self.local.get("aws_details", {}).get("region", "us-east-1"))

    @property
    def vcenter_id(self) -> str:
        return str(self.local["vcenter"]["vcenter_id"])

    def vcenter_public_key(self) -> str | None:
        path = self.local["vcenter"].get("public_key")
        return Path(path).read_text() if path and Path(path).exists() else None


class Provisioner:
    def __init__(self, endpoints: Endpoints, state_dir: Path) -> None:
        self.endpoints = endpoints
        self.state_dir = state_dir
        self._vcenter_lock = threading.Lock()  # pyvmomi sessions are not thread-safe
        self._azure_factory: Any = None
        self._gcp: Any = None

    def create(self, plan: VmPlan) -> CreatedVm:
        create = {Provider.GCP: self.gcp, Provider.AZURE: self.azure, Provider.AWS: self.ec2,
                  Provider.VMWARE: self.vmware}[plan.provider]
        return create(plan)

    # --- GCP ---------------------------------------------------------------------------------

    def gcp(self, plan: VmPlan) -> CreatedVm:
        from google.cloud import compute_v1

        from clouds.gcp.compute import instances_client

        described = self.endpoints.local["gcp"]
        if self._gcp is None:
            self._gcp = instances_client(api_endpoint=described["compute_endpoint"],
                                         credentials_mode="anonymous")
        project = plan.customer.gcp_project
        self._gcp.insert(project=project, zone=GCP_ZONE, instance_resource=compute_v1.Instance(
            name=plan.name, machine_type=f"zones/{GCP_ZONE}/machineTypes/e2-small",
            labels=plan.labels)).result(timeout=60)
        vm = self._gcp.get(project=project, zone=GCP_ZONE, instance=plan.name)
        return CreatedVm(Provider.GCP, plan.name, project, str(vm.id),
                         described["metadata"].format(name=plan.name))

    # --- Azure -------------------------------------------------------------------------------

    def _azure(self, subscription: str) -> Any:
        if self._azure_factory is None:
            from azure.identity import ManagedIdentityCredential

            from clouds.azure.arm import compute_client_factory
            from config.settings import AzureSettings
            from localclouds.azure.layout import AzurePaths, ensure_identity

            described = self.endpoints.local["azure"]
            # The App Service managed-identity protocol, pointed at the local cloud: the
            # fleet host is its own process, so it sets the variables azure-identity reads.
            os.environ["IDENTITY_ENDPOINT"] = described["identity_endpoint"]
            os.environ["IDENTITY_HEADER"] = ensure_identity(
                AzurePaths.under(self.state_dir)).identity_header
            settings = AzureSettings(arm_endpoint=described["arm"],
                                     ca_bundle=Path(described["ca_bundle"]))
            self._azure_factory = compute_client_factory(settings, ManagedIdentityCredential())
        return self._azure_factory(subscription)

    def azure(self, plan: VmPlan) -> CreatedVm:
        from azure.mgmt.compute import models as m

        windows = plan.os is OsFamily.WINDOWS
        image = (m.ImageReference(publisher="MicrosoftWindowsServer", offer="WindowsServer",
                                  sku="2022-datacenter-azure-edition", version="latest")
                 if windows else
                 m.ImageReference(publisher="Canonical", offer="0001-com-ubuntu-server-jammy",
                                  sku="22_04-lts-gen2", version="latest"))
        body = m.VirtualMachine(
            location=AZURE_LOCATION, tags=plan.labels,
            properties=m.VirtualMachineProperties(
                hardware_profile=m.HardwareProfile(vm_size="Standard_B2s"),
                storage_profile=m.StorageProfile(image_reference=image),
                os_profile=m.OSProfile(computer_name=plan.name[:15], admin_username="fleet",
                                       admin_password="Simulated-Only-1")))
        subscription = plan.customer.azure_subscription
        vm = self._azure(subscription).virtual_machines.begin_create_or_update(
            AZURE_RESOURCE_GROUP, plan.name, body).result()
        vm_id = vm.properties.vm_id if getattr(vm, "properties", None) else vm.vm_id
        return CreatedVm(Provider.AZURE, plan.name, subscription, str(vm_id),
                         self.endpoints.local["azure"]["imds"].format(name=vm_id))

    # --- EC2 ---------------------------------------------------------------------------------

    def ec2(self, plan: VmPlan) -> CreatedVm:
        account, region = plan.customer.aws_account, self.endpoints.region
        # The customer creating its VM is patient with a throttling AWS (``make chaos`` throttles
        # STS and EC2 for fleetpatch's sake, not to fail the simulated customer).
        sts = boto3.client("sts", region_name=region, endpoint_url=self.endpoints.aws, config=_PATIENT,
                           aws_access_key_id="AKIAFLEETPATCHSIMADM0",
                           aws_secret_access_key="fleetpatch-simulated-customer")
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/FleetpatchSimulatedAdmin",
                                RoleSessionName="fleet-simulator")["Credentials"]
        ec2 = boto3.client("ec2", region_name=region, endpoint_url=self.endpoints.aws, config=_PATIENT,
                           aws_access_key_id=creds["AccessKeyId"],
                           aws_secret_access_key=creds["SecretAccessKey"],
                           aws_session_token=creds["SessionToken"])
        tags = {"Name": plan.name, **plan.labels}
        answer = ec2.run_instances(
            ImageId=EC2_AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
            MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
        instance_id = answer["Instances"][0]["InstanceId"]
        url = self.endpoints.local["ec2"]["imds"].format(account=account, region=region,
                                                         instance_id=instance_id)
        return CreatedVm(Provider.AWS, plan.name, account, instance_id, url, {"region": region})

    # --- vCenter -----------------------------------------------------------------------------

    def vmware(self, plan: VmPlan) -> CreatedVm:
        from pyVmomi import vim

        from clouds.vmware.token import issue_token
        from clouds.vmware.vsphere import VcenterEndpoint, VsphereClient

        described = self.endpoints.local["vcenter"]
        endpoint = VcenterEndpoint(url=described["url"], username=described["username"],
                                   password=described["password"])
        with self._vcenter_lock, VsphereClient(endpoint) as client:
            source = client.find_vm_by_name(VCSIM_TEMPLATE)
            if source is None:
                raise LookupError(f"vcsim has no {VCSIM_TEMPLATE} to clone")
            spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(), powerOn=True, template=False)
            task = source.CloneVM_Task(folder=source.parent, name=plan.name, spec=spec)
            client._wait(task, f"cloning {plan.name}")
            vm = task.info.result
            if client.vm_facts(vm).power_state != "poweredOn":
                client._wait(vm.PowerOnVM_Task(), f"powering on {plan.name}")
            for key, value in plan.labels.items():
                client.set_custom_attribute(vm, key, value)
            facts = client.vm_facts(vm)
            token = issue_token(Path(described["signing_key"]).read_text(),
                                vcenter_id=described["vcenter_id"],
                                instance_uuid=facts.instance_uuid, customer=plan.customer.name,
                                now=datetime.now(UTC), ttl=TOKEN_TTL)
            client.write_token(vm, token)
        guest = described["guest_tools"].format(name=plan.name)
        # What the guest's SMBIOS table shows, read the way a guest would (guest tools).
        bios = httpx.get(f"{guest}/bios-uuid", timeout=30)
        bios.raise_for_status()
        return CreatedVm(Provider.VMWARE, plan.name, described["vcenter_id"], facts.instance_uuid,
                         guest, {"guest_tools_url": guest, "bios_uuid": bios.text.strip(),
                                 "rpctool_dir": str(Path(described["rpctool"]).parent)})

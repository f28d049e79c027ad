"""Azure and vCenter VMs enrol through the API, each proving itself with its own cloud's identity."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from clouds.azure.arm import compute_client_factory
from clouds.vmware.factory import client_for
from contracts import ids
from contracts.enrollment import EnrollResult
from localclouds.aws.agent_client import AgentClient
from tests.integration.stack import Stack, eventually, start_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def stack(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as exits:
        yield await start_stack(exits, dev_env.client, tmp_path_factory.mktemp("state"), f"p{uuid.uuid4().hex[:8]}-")


async def _register(stack: Stack, body: dict) -> dict:
    response = await stack.api.post("/v1/registrations", json=body)
    if response.status_code == 202:
        location = response.headers["location"]

        async def answered() -> httpx.Response | None:
            polled = await stack.api.get(location)
            return polled if polled.status_code != 202 else None

        response = await eventually(answered, timeout=90)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _agent_online(stack: Stack, activation: dict, platform: str) -> str:
    def run() -> str:
        agent = AgentClient(stack.settings.aws.endpoint_url, activation["region"])
        registration = agent.register(activation["id"], activation["code"])
        agent.session(registration).update_instance_information(
            AgentVersion="3.3.0.0", PlatformName=platform, PlatformType="Linux", PlatformVersion="9",
            ComputerName="vm", IPAddress="10.0.0.9", AgentStatus="Active",
        )
        return registration.instance_id

    return await asyncio.to_thread(run)


async def _enrolled(stack: Stack, provider: str, key: str) -> EnrollResult:
    handle = stack.client.get_workflow_handle(ids.enrollment(provider, key), result_type=EnrollResult)
    return await asyncio.wait_for(handle.result(), timeout=90)


async def test_an_azure_vm_enrolls_with_an_attested_document(stack: Stack) -> None:
    subscription = str(uuid.uuid4())
    assert (await stack.link(provider="azure", cloud_account=subscription, customer="initech",
                             default_patch_group="late")).status_code == 201
    name = f"vm{uuid.uuid4().hex[:8]}"
    compute = compute_client_factory(stack.settings.azure)(subscription)
    await asyncio.to_thread(
        lambda: compute.virtual_machines.begin_create_or_update(
            "rg-web", name,
            {"location": "eastus", "tags": {"rackspace-addon-patching": "true"},
             "properties": {"storageProfile": {"osDisk": {"osType": "Linux"}}, "osProfile": {"computerName": name}}},
        ).result()
    )
    imds = stack.local["azure"]["imds"].replace("{name}", name)
    async with httpx.AsyncClient(headers={"Metadata": "true"}) as http:
        nonce = (await stack.api.get("/v1/challenge")).json()["nonce"]
        attested = (await http.get(f"{imds}/metadata/attested/document", params={"api-version": "2020-09-01", "nonce": nonce})).json()
        instance = (await http.get(f"{imds}/metadata/instance", params={"api-version": "2021-02-01"})).json()
    body = {
        "provider": "azure",
        "identity": {"attested": attested, "nonce": nonce, "resource_id": instance["compute"]["resourceId"]},
        "hostname": name,
        "platform": {"os": "rhel", "version": "9.4"},
    }
    answer = await _register(stack, body)
    assert answer["patch_group"] == "late"  # the link's default: the VM has no group label
    managed = await _agent_online(stack, answer["activation"], "Red Hat Enterprise Linux")
    result = await _enrolled(stack, "azure", f"{subscription}/{instance['compute']['vmId']}")
    assert result.managed_instance_id == managed
    assert result.customer == "initech"

    # A nonce we did not issue is refused before any workflow runs.
    body["identity"]["nonce"] = "A" * 30
    forged = await stack.api.post("/v1/registrations", json=body)
    assert forged.status_code == 401 and forged.json()["error"] == "IdentityNonceMismatch"


async def test_a_vcenter_vm_enrolls_with_its_fleetpatch_token(stack: Stack) -> None:
    vcenter = stack.local["vcenter"]
    vc_id = vcenter["vcenter_id"]
    public_key = Path(vcenter["public_key"]).read_text()
    response = await stack.link(provider="vmware", cloud_account=vc_id, customer="umbrella", vcenter_public_keys=[public_key])
    assert response.status_code == 201, response.text
    private_key = Path(vcenter["signing_key"]).read_text()

    def issue() -> list[tuple[str, str]]:
        with client_for(stack.settings.vmware, vc_id) as vsphere:
            # The local vCenter labels none of its built-in VMs: label one, as an operator would.
            vsphere.set_custom_attribute(vsphere.find_vm_by_name("DC0_H0_VM0"), "rackspace-addon-patching", "true")
            return vsphere.issue_tokens(vc_id, "umbrella", private_key, now=datetime.now(UTC), ttl=timedelta(hours=1))

    issued = await asyncio.to_thread(issue)
    assert issued, "vcsim's labelled VMs got tokens"
    name, instance_uuid = issued[0]
    guest = vcenter["guest_tools"].replace("{name}", name)
    async with httpx.AsyncClient() as http:
        token = (await http.get(f"{guest}/guestinfo/fleetpatch.token")).text.strip()
        bios = (await http.get(f"{guest}/bios-uuid")).text.strip()
    body = {
        "provider": "vmware",
        "identity": {"token": token, "bios_uuid": bios},
        "hostname": name.lower().replace("_", "-"),
        "platform": {"os": "windows", "version": "2022"},
    }
    # The same token presented with another machine's BIOS UUID is refused.
    stolen = dict(body, identity={"token": token, "bios_uuid": str(uuid.uuid4())})
    refused = await stack.api.post("/v1/registrations", json=stolen)
    assert refused.status_code == 401 and refused.json()["error"] == "IdentityInstanceMismatch", refused.text

    answer = await _register(stack, body)
    managed = await _agent_online(stack, answer["activation"], "Microsoft Windows Server 2022")
    result = await _enrolled(stack, "vmware", f"{vc_id}/{instance_uuid}")
    assert result.managed_instance_id == managed
    assert result.identity.instance_name == name


def _customer_session(stack: Stack, account_id: str) -> boto3.session.Session:
    sts = boto3.client("sts", endpoint_url=stack.settings.aws.endpoint_url, region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/CustomerAdmin", RoleSessionName="customer")["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"], region_name="us-east-1",
    )


async def test_an_ec2_instance_enrolls_with_its_identity_document(stack: Stack) -> None:
    account = f"{uuid.uuid4().int % 10**12:012d}"
    assert (await stack.link(provider="aws", cloud_account=account, customer="hooli", role_name="FleetpatchAccess")).status_code == 201
    customer = _customer_session(stack, account)
    ec2 = customer.client("ec2", endpoint_url=stack.settings.aws.endpoint_url)
    instance_id = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "rackspace-addon-patching", "Value": "true"},
            {"Key": "rackspace-addon-patching-patchgroup", "Value": "early"},
        ]}],
    )["Instances"][0]["InstanceId"]
    imds = stack.local["ec2"]["imds"].format(account=account, region="us-east-1", instance_id=instance_id)
    async with httpx.AsyncClient() as http:
        token = (await http.put(f"{imds}/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})).text
        rsa2048 = (await http.get(f"{imds}/latest/dynamic/instance-identity/rsa2048", headers={"X-aws-ec2-metadata-token": token})).text
    body = {"provider": "aws", "identity": {"rsa2048": rsa2048}, "hostname": "ip-10-0-0-7",
            "platform": {"os": "amazon-linux-2", "version": "2"}}
    answer = await _register(stack, body)
    assert answer["activation"] is None  # EC2: the agent is already there, with its instance profile
    assert answer["managed_instance_id"] == instance_id
    assert answer["systems_account"] == account  # the customer's own account
    tags = {t["Key"]: t["Value"] for t in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id]}])["Tags"]}
    assert tags["Patch Group"] == "early"

    # The pre-installed agent reports with the instance's credentials: the enrollment completes.
    from localclouds.aws.agent_client import _session

    creds = customer.get_credentials()
    agent = _session().create_client(
        "ssm-agent", region_name="us-east-1", endpoint_url=stack.settings.aws.endpoint_url,
        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key, aws_session_token=creds.token,
    )
    await asyncio.to_thread(
        agent.update_instance_information, InstanceId=instance_id, AgentVersion="3.3.0.0", PlatformName="Amazon Linux",
        PlatformType="Linux", PlatformVersion="2", ComputerName="ip-10-0-0-7", IPAddress="10.0.0.7",
    )
    result = await _enrolled(stack, "aws", f"{account}/{instance_id}")
    assert result.managed_instance_id == instance_id and result.systems_account == account

    # Registering again is refused: tagged by an enrollment and reporting to SSM.
    async with httpx.AsyncClient() as http:
        token = (await http.put(f"{imds}/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})).text
        body["identity"]["rsa2048"] = (await http.get(f"{imds}/latest/dynamic/instance-identity/rsa2048", headers={"X-aws-ec2-metadata-token": token})).text
    again = await stack.api.post("/v1/registrations", json=body)
    assert again.status_code == 409 and again.json()["error"] == "AlreadyEnrolled"

"""vCenter without an operator: linking a vCenter creates its token schedule; a labelled VM gets a
token from it and enrolls with no `issue-tokens` command; the token it used is replaced, so a
replay of it is refused (401)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import boto3
import httpx
import pytest
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment

from clouds.vmware.token import peek_vcenter_token
from contracts import ids
from contracts.identity import instance_key
from contracts.enrollment import EnrollResult
from contracts.vcenter_tokens import VcenterTokensInput
from localclouds.aws.agent_client import AgentClient
from scheduling.reconcile import orchestrator_queue
from tests.integration.stack import Stack, eventually, start_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def stack(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as exits:
        yield await start_stack(exits, dev_env.client, tmp_path_factory.mktemp("state"), f"v{uuid.uuid4().hex[:8]}-")


async def test_a_labelled_vcenter_vm_enrolls_with_no_operator_and_its_token_enrolls_once(stack: Stack) -> None:
    vcenter = stack.local["vcenter"]
    vc_id = vcenter["vcenter_id"]
    name = "DC0_H0_VM0"
    assert (await stack.guest(name, "guestinfo/fleetpatch.token")).status_code == 404  # no token yet

    def label() -> None:  # the local vCenter labels none of its built-in VMs
        from clouds.vmware.factory import client_for

        with client_for(stack.settings.vmware, vc_id) as vsphere:
            vsphere.set_custom_attribute(vsphere.find_vm_by_name(name), "rackspace-addon-patching", "true")

    await asyncio.to_thread(label)
    linked = await stack.link(provider="vmware", cloud_account=vc_id, customer="umbrella",
                              vcenter_public_keys=[Path(vcenter["public_key"]).read_text()])
    assert linked.status_code == 201, linked.text
    # The dev server is shared by the session and the schedule id is per vCenter (the local
    # vCenter's id is fixed): an earlier module's link (test_enroll_providers) may have created it,
    # and then this link brings it up to date. Either way it must now exist and serve this stack.
    assert linked.json()["token_schedule"] in ("created", "updated")
    described = await stack.client.get_schedule_handle(ids.vcenter_tokens_schedule(vc_id)).describe()
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.task_queue == orchestrator_queue(stack.settings.task_queue_prefix)
    [inp] = await stack.client.data_converter.decode(action.args, [VcenterTokensInput])
    assert (inp.vcenter_id, inp.customer, inp.queue_prefix) == (vc_id, "umbrella", stack.settings.task_queue_prefix)
    schedule = stack.client.get_schedule_handle(ids.vcenter_tokens_schedule(vc_id))
    # The vCenter id is fixed and the dev server is shared by every stack of the session: a run an
    # earlier stack's schedule started may still be open with no worker left to finish it, and the
    # schedule skips a tick that would overlap it. End such leftovers so the trigger below runs.
    for action in (await schedule.describe()).info.running_actions:
        await stack.client.get_workflow_handle(action.workflow_id).terminate("left by an earlier test stack")
    await schedule.trigger()  # its next tick, now

    async def token() -> str | None:
        answer = await stack.guest(name, "guestinfo/fleetpatch.token")
        return answer.text.strip() if answer.status_code == 200 else None

    used = await eventually(token, timeout=60)
    bios = (await stack.guest(name, "bios-uuid")).text.strip()
    body = {"provider": "vmware", "identity": {"token": used, "bios_uuid": bios}, "hostname": "dc0-h0-vm0",
            "platform": {"os": "windows", "version": "2022"}}
    response = await stack.api.post("/v1/registrations", json=body)
    if response.status_code == 202:
        location = response.headers["location"]

        async def answered() -> httpx.Response | None:
            polled = await stack.api.get(location)
            return polled if polled.status_code != 202 else None

        response = await eventually(answered, timeout=90)
    assert response.status_code == 201, response.text
    activation = response.json()["activation"]

    def agent() -> str:
        client = AgentClient(stack.settings.aws.endpoint_url, activation["region"])
        registration = client.register(activation["id"], activation["code"])
        client.session(registration).update_instance_information(
            AgentVersion="3.3.0.0", PlatformName="Microsoft Windows Server 2022", PlatformType="Windows",
            PlatformVersion="10.0", ComputerName="dc0-h0-vm0", IPAddress="10.0.0.9", AgentStatus="Active")
        return registration.instance_id

    managed = await asyncio.to_thread(agent)
    _, instance_uuid = peek_vcenter_token(used)
    handle = stack.client.get_workflow_handle(ids.enrollment("vmware", instance_key(vc_id, instance_uuid)), result_type=EnrollResult)
    result = await asyncio.wait_for(handle.result(), timeout=90)
    assert result.managed_instance_id == managed

    fresh = await token()
    assert fresh and fresh != used  # the enrollment replaced the token it used
    replay = await stack.api.post("/v1/registrations", json=body)
    assert replay.status_code == 401, replay.text

    # Re-linked with remote access: the vended systems account is prepared at once, and a
    # Session Manager session to the enrolled VM starts.
    again = await stack.link(provider="vmware", cloud_account=vc_id, customer="umbrella", remote_access=True,
                             vcenter_public_keys=[Path(vcenter["public_key"]).read_text()])
    assert again.status_code == 201 and again.json()["remote_access"] is True, again.text
    await asyncio.to_thread(_session_starts, stack, result.systems_account, managed)


def _session_starts(stack: Stack, account_id: str, managed: str) -> None:
    endpoint = stack.settings.aws.endpoint_url
    creds = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="operator")["Credentials"]
    ssm = boto3.client("ssm", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                       aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    tier = ssm.get_service_setting(SettingId="/ssm/managed-instance/activation-tier")["ServiceSetting"]["SettingValue"]
    assert tier == "advanced"
    assert "s3BucketName" in ssm.get_document(Name="SSM-SessionManagerRunShell")["Content"]
    started = ssm.start_session(Target=managed)
    assert started["SessionId"] and started["StreamUrl"].startswith("wss://")


async def test_a_token_signed_for_another_customer_enrolls_nothing(stack: Stack) -> None:
    """The vCenter's own key signed it, but for a customer this vCenter is not linked to."""
    vcenter = stack.local["vcenter"]
    vc_id, name = vcenter["vcenter_id"], "DC0_H0_VM1"
    linked = await stack.link(provider="vmware", cloud_account=vc_id, customer="umbrella",
                              vcenter_public_keys=[Path(vcenter["public_key"]).read_text()])
    assert linked.status_code == 201, linked.text

    token = await stack.plant_token(name, "globex")
    bios = (await stack.guest(name, "bios-uuid")).text.strip()
    body = {"provider": "vmware", "identity": {"token": token, "bios_uuid": bios}, "hostname": "dc0-h0-vm1",
            "platform": {"os": "windows", "version": "2022"}}
    refused = await stack.api.post("/v1/registrations", json=body)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "TenantNotLinked" and "globex" in refused.json()["reason"]


async def test_a_vcenter_linked_per_folder_gives_tokens_only_inside_it_and_only_they_enroll(stack: Stack) -> None:
    """A vCenter shared by several customers is linked per folder: the schedule writes tokens to the
    labelled VMs inside the link's folder only, and a VM outside it is refused (401) even holding
    a genuine token of this vCenter for this customer."""
    from clouds.vmware.factory import client_for

    vcenter = stack.local["vcenter"]
    vc_id, inside, outside = vcenter["vcenter_id"], "DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1"
    keys = [Path(vcenter["public_key"]).read_text()]

    def arrange() -> None:
        with client_for(stack.settings.vmware, vc_id) as vsphere:
            for name in (inside, outside):
                vsphere.set_custom_attribute(vsphere.find_vm_by_name(name), "rackspace-addon-patching", "true")
                vsphere.write_token(vsphere.find_vm_by_name(name), "")
            datacenter = vsphere.content.rootFolder.childEntity[0]
            folder = datacenter.vmFolder.CreateFolder("umbrella")
            vsphere._wait(folder.MoveIntoFolder_Task([vsphere.find_vm_by_name(inside)]), "moving a VM")

    await asyncio.to_thread(arrange)
    try:
        linked = await stack.link(provider="vmware", cloud_account=vc_id, customer="umbrella",
                                  vcenter_public_keys=keys, vcenter_scope="DC0/vm/umbrella")
        assert linked.status_code == 201, linked.text
        assert linked.json()["vcenter_scope"] == "DC0/vm/umbrella"
        schedule = stack.client.get_schedule_handle(ids.vcenter_tokens_schedule(vc_id))
        action = (await schedule.describe()).schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        [inp] = await stack.client.data_converter.decode(action.args, [VcenterTokensInput])
        assert inp.scope == "DC0/vm/umbrella"
        for running in (await schedule.describe()).info.running_actions:
            await stack.client.get_workflow_handle(running.workflow_id).terminate("left by an earlier run")
        await schedule.trigger()

        async def token(name: str) -> str | None:
            answer = await stack.guest(name, "guestinfo/fleetpatch.token")
            return answer.text.strip() if answer.status_code == 200 and answer.text.strip() else None

        assert await eventually(lambda: token(inside), timeout=60)
        last = (await schedule.describe()).info.recent_actions[-1].action
        await asyncio.wait_for(stack.client.get_workflow_handle(last.workflow_id).result(), timeout=60)
        assert await token(outside) is None  # the run is over: the VM outside the folder got nothing

        planted = await stack.plant_token(outside, "umbrella")  # a genuine token of this customer, by hand
        bios = (await stack.guest(outside, "bios-uuid")).text.strip()
        body = {"provider": "vmware", "identity": {"token": planted, "bios_uuid": bios}, "hostname": "dc0-c0-rp0-vm1",
                "platform": {"os": "ubuntu", "version": "22.04"}}
        refused = await stack.api.post("/v1/registrations", json=body)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"] == "IdentityOutOfScope"
        # Reconcile sees the folder's VMs only: the one outside is not this link's to report.
        dry = await stack.api.post("/v1/admin/reconcile", headers=stack.admin_headers,
                                   json={"provider": "vmware", "account": vc_id, "dry_run": True, "wait": True})
        assert dry.status_code == 200, dry.text
        (result,) = dry.json()["results"]
        assert result["vms_seen"] == 1
        assert outside not in {a["evidence"].get("vm_name") for a in result["actions"]}
    finally:  # the vCenter id is shared by the session's stacks: leave it linked without a folder
        await stack.link(provider="vmware", cloud_account=vc_id, customer="umbrella", vcenter_public_keys=keys)

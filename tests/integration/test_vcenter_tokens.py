"""vCenter without an operator: linking a vCenter starts its token schedule; a VM a vCenter user
labels gets a token, enrolls with no fleetpatch command, and its used token never enrolls again."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import boto3
import httpx
import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from clouds.vmware.factory import client_for
from contracts import ids
from tests.integration.stack import Stack, eventually, start_stack
from tests.integration.test_enroll_providers import _agent_online, _enrolled, _register

pytestmark = pytest.mark.integration

VM = "DC0_H0_VM1"  # not labelled by the local vCenter's seed


@pytest.fixture(scope="module")
async def stack(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    os.environ["FLEETPATCH_VMWARE__TOKEN_SCHEDULE_EVERY"] = "2s"  # the schedule's pace, so the test need not wait 10 min
    try:
        async with AsyncExitStack() as exits:
            yield await start_stack(exits, dev_env.client, tmp_path_factory.mktemp("state"), f"v{uuid.uuid4().hex[:8]}-")
    finally:
        os.environ.pop("FLEETPATCH_VMWARE__TOKEN_SCHEDULE_EVERY", None)


async def _guest(stack: Stack, path: str) -> httpx.Response:
    guest = stack.local["vcenter"]["guest_tools"].replace("{name}", VM)
    async with httpx.AsyncClient() as http:
        return await http.get(f"{guest}/{path}")


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


async def test_a_new_labelled_vcenter_vm_enrolls_without_an_operator(stack: Stack) -> None:
    vcenter = stack.local["vcenter"]
    vc_id = vcenter["vcenter_id"]
    public_key = Path(vcenter["public_key"]).read_text()
    response = await stack.link(provider="vmware", cloud_account=vc_id, customer="umbrella", vcenter_public_keys=[public_key])
    assert response.status_code == 201, response.text
    assert response.json()["token_schedule"] == "created"
    schedule = stack.client.get_schedule_handle(ids.vcenter_tokens_schedule(vc_id))
    try:
        assert (await _guest(stack, "guestinfo/fleetpatch.token")).status_code == 404  # not labelled: no token

        def label() -> str:  # what the vCenter's own user does: set the custom attribute
            with client_for(stack.settings.vmware, vc_id) as vsphere:
                vm = vsphere.find_vm_by_name(VM)
                vsphere.set_custom_attribute(vm, stack.settings.labels.patching, "true")
                return vsphere.vm_facts(vm).instance_uuid

        instance_uuid = await asyncio.to_thread(label)

        async def token() -> str | None:
            held = await _guest(stack, "guestinfo/fleetpatch.token")
            return held.text.strip() if held.status_code == 200 else None

        used = await eventually(token, timeout=60)
        bios = (await _guest(stack, "bios-uuid")).text.strip()
        body = {
            "provider": "vmware",
            "identity": {"token": used, "bios_uuid": bios},
            "hostname": "dc0-h0-vm1",
            "platform": {"os": "ubuntu", "version": "22.04"},
        }
        answer = await _register(stack, body)
        managed = await _agent_online(stack, answer["activation"], "Ubuntu")
        result = await _enrolled(stack, "vmware", f"{vc_id}/{instance_uuid}")
        assert result.managed_instance_id == managed and result.customer == "umbrella"

        # The token that enrolled was replaced; replaying it is refused as an identity.
        fresh = await token()
        assert fresh and fresh != used
        replay = await stack.api.post("/v1/registrations", json=body)
        assert replay.status_code == 401, replay.text
        assert replay.json()["error"] in ("IdentityTokenMismatch", "IdentityTokenUsed"), replay.text

        # Re-linked with remote access: the vended systems account is prepared at once, and a
        # session to the enrolled VM starts.
        again = await stack.link(provider="vmware", cloud_account=vc_id, customer="umbrella",
                                 vcenter_public_keys=[public_key], remote_access=True)
        assert again.status_code == 201 and again.json()["token_schedule"] == "updated", again.text
        await asyncio.to_thread(_session_starts, stack, result.systems_account, managed)

        # Unlinked: its token schedule goes with it.
        removed = await stack.api.delete(f"/v1/admin/links/vmware/{vc_id}", headers=stack.admin_headers)
        assert removed.status_code == 200 and removed.json()["token_schedule_deleted"] is True, removed.text
    finally:
        try:
            await schedule.delete()
        except RPCError:
            pass  # already deleted with the link

"""One vCenter shared by two customers: acme links the local vCenter's folder ``acme`` and globex
its folder ``globex``, each as a link of its own (``{vcenter}:{name}``). Each link gets its own
token schedule; each customer's labelled VM gets a token from it and enrolls, with no operator
command, into its own customer's systems account. A token issued under globex's link for a VM in
acme's folder is refused (401), and links whose folders overlap are refused (409)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from clouds.vmware.factory import client_for
from clouds.vmware.token import peek_vcenter_token
from contracts import ids
from contracts.enrollment import EnrollResult
from contracts.identity import instance_key
from contracts.vcenter_tokens import VcenterTokensInput
from localclouds.aws.agent_client import AgentClient
from tests.integration.stack import Stack, eventually, start_stack

pytestmark = pytest.mark.integration

LABEL = "rackspace-addon-patching"
RUN = uuid.uuid4().hex[:6]  # link names per run: schedules live on the session's shared dev server
CUSTOMERS = {"acme": "DC0_H0_VM0", "globex": "DC0_H0_VM1"}


@pytest.fixture(scope="module")
async def stack(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as exits:
        yield await start_stack(exits, dev_env.client, tmp_path_factory.mktemp("state"), f"s{uuid.uuid4().hex[:8]}-")


async def _token(stack: Stack, name: str) -> str | None:
    answer = await stack.guest(name, "guestinfo/fleetpatch.token")
    return answer.text.strip() if answer.status_code == 200 and answer.text.strip() else None


async def _fresh(stack: Stack, name: str, used: str) -> str | None:
    token = await _token(stack, name)
    return token if token and token != used else None


def _folders(stack: Stack) -> None:
    """A folder per customer holding its VM, each VM labelled for patching and without a token."""
    with client_for(stack.settings.vmware, stack.local["vcenter"]["vcenter_id"]) as vsphere:
        datacenter = vsphere.content.rootFolder.childEntity[0]
        for customer, name in CUSTOMERS.items():
            vm = vsphere.find_vm_by_name(name)
            vsphere.set_custom_attribute(vm, LABEL, "true")
            vsphere.write_token(vm, "")
            folder = datacenter.vmFolder.CreateFolder(f"{customer}-{RUN}")
            vsphere._wait(folder.MoveIntoFolder_Task([vm]), "moving a VM")


def _link_body(stack: Stack, customer: str, **extra: Any) -> dict[str, Any]:
    vcenter = stack.local["vcenter"]
    return {"provider": "vmware", "cloud_account": f"{vcenter['vcenter_id']}:{customer}-{RUN}", "customer": customer,
            "vcenter_public_keys": [Path(vcenter["public_key"]).read_text()],
            "vcenter_scope": f"DC0/vm/{customer}-{RUN}", **extra}


async def _register(stack: Stack, name: str, token: str) -> httpx.Response:
    bios = (await stack.guest(name, "bios-uuid")).text.strip()
    body = {"provider": "vmware", "identity": {"token": token, "bios_uuid": bios}, "hostname": name.lower().replace("_", "-"),
            "platform": {"os": "ubuntu", "version": "22.04"}}
    response = await stack.api.post("/v1/registrations", json=body)
    if response.status_code != 202:
        return response
    location = response.headers["location"]

    async def answered() -> httpx.Response | None:
        polled = await stack.api.get(location)
        return polled if polled.status_code != 202 else None

    return await eventually(answered, timeout=120)


def _agent(stack: Stack, activation: dict[str, str], name: str) -> str:
    client = AgentClient(stack.settings.aws.endpoint_url, activation["region"])
    registration = client.register(activation["id"], activation["code"])
    client.session(registration).update_instance_information(
        AgentVersion="3.3.0.0", PlatformName="Ubuntu", PlatformType="Linux", PlatformVersion="22.04",
        ComputerName=name, IPAddress="10.0.0.7", AgentStatus="Active")
    return registration.instance_id


async def _trigger(stack: Stack, link_id: str) -> None:
    schedule = stack.client.get_schedule_handle(ids.vcenter_tokens_schedule(link_id))
    action = (await schedule.describe()).schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    [inp] = await stack.client.data_converter.decode(action.args, [VcenterTokensInput])
    assert (inp.vcenter_id, inp.scope) == (link_id, f"DC0/vm/{link_id.partition(':')[2]}")
    await schedule.trigger()


async def test_two_customers_on_one_vcenter_enroll_into_their_own_accounts(stack: Stack) -> None:
    vc_id = stack.local["vcenter"]["vcenter_id"]
    await asyncio.to_thread(_folders, stack)
    links = {customer: f"{vc_id}:{customer}-{RUN}" for customer in CUSTOMERS}
    try:
        for customer in CUSTOMERS:
            linked = await stack.link(**_link_body(stack, customer))
            assert linked.status_code == 201, linked.text
            assert (linked.json()["cloud_account"], linked.json()["token_schedule"]) == (links[customer], "created")
        await _overlapping_links_are_refused(stack)
        listed = await stack.api.get("/v1/admin/links", headers=stack.admin_headers)
        assert {l["cloud_account"]: l["customer"] for l in listed.json()["links"]} == {v: k for k, v in links.items()}

        for link_id in links.values():
            await _trigger(stack, link_id)  # the schedule's next tick, now: no operator command
        tokens = {c: await eventually(lambda n=name: _token(stack, n), timeout=90) for c, name in CUSTOMERS.items()}
        assert {c: peek_vcenter_token(t)[0] for c, t in tokens.items()} == links

        results: dict[str, EnrollResult] = {}
        for customer, name in CUSTOMERS.items():
            response = await _register(stack, name, tokens[customer])
            assert response.status_code == 201, response.text
            managed = await asyncio.to_thread(_agent, stack, response.json()["activation"], name)
            key = instance_key(links[customer], peek_vcenter_token(tokens[customer])[1])
            handle = stack.client.get_workflow_handle(ids.enrollment("vmware", key), result_type=EnrollResult)
            results[customer] = await asyncio.wait_for(handle.result(), timeout=120)
            assert results[customer].managed_instance_id == managed
            fresh = await eventually(lambda n=name, used=tokens[customer]: _fresh(stack, n, used), timeout=60)
            assert peek_vcenter_token(fresh)[0] == links[customer]  # the used token's successor keeps its link
        assert {c: r.customer for c, r in results.items()} == {"acme": "acme", "globex": "globex"}
        assert results["acme"].systems_account != results["globex"].systems_account
        assert {r.identity.cloud_account for r in results.values() if r.identity} == set(links.values())

        await _a_token_of_globex_in_acmes_folder_is_refused(stack, links["globex"])
        await _reconcile_sees_each_links_folder(stack, links)
        await _offboarding_one_customer_leaves_the_other(stack, links, results)
    finally:
        for link_id in links.values():
            for sid in (ids.vcenter_tokens_schedule(link_id), ids.reconcile_schedule("vmware", link_id)):
                try:
                    await stack.client.get_schedule_handle(sid).delete()
                except RPCError:
                    pass


async def _overlapping_links_are_refused(stack: Stack) -> None:
    vc_id = stack.local["vcenter"]["vcenter_id"]
    inside = _link_body(stack, "initech", vcenter_scope=f"DC0/vm/acme-{RUN}/initech")
    whole = {k: v for k, v in _link_body(stack, "initech", cloud_account=vc_id).items() if k != "vcenter_scope"}
    pool = _link_body(stack, "initech", vcenter_scope="DC0/host/DC0_C0/Resources")
    for body in (inside, whole, pool):
        refused = await stack.link(**body)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "LinkScopesOverlap" and f"acme-{RUN}" in refused.json()["reason"]
    found = await stack.api.get(f"/v1/admin/links/vmware/{vc_id}:initech-{RUN}", headers=stack.admin_headers)
    assert found.status_code == 404, found.text


async def _a_token_of_globex_in_acmes_folder_is_refused(stack: Stack, globex: str) -> None:
    """The vCenter's key signs it under globex's link, for acme's VM, and it is even written into
    that VM: it is still refused, and acme's VM stays acme's."""
    name = CUSTOMERS["acme"]
    refused = await _register(stack, name, await stack.plant_token(name, "globex", link=globex))
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "IdentityOutOfScope"


async def _reconcile_sees_each_links_folder(stack: Stack, links: dict[str, str]) -> None:
    for link_id in links.values():
        dry = await stack.api.post("/v1/admin/reconcile", headers=stack.admin_headers,
                                   json={"provider": "vmware", "account": link_id, "dry_run": True, "wait": True})
        assert dry.status_code == 200, dry.text
        (result,) = dry.json()["results"]
        assert (result["cloud_account"], result["vms_seen"], result["managed_seen"]) == (link_id, 1, 1)
        assert result["actions"] == []  # each link's VM is enrolled in its own account: nothing to do


async def _offboarding_one_customer_leaves_the_other(stack: Stack, links: dict[str, str],
                                                     results: dict[str, EnrollResult]) -> None:
    answer = await stack.api.post("/v1/admin/offboard", headers=stack.admin_headers,
                                  json={"provider": "vmware", "account": links["acme"], "yes": True})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(a["kind"], a["target"]) for a in body["result"]["actions"]] == [
        ("deregister", results["acme"].managed_instance_id)]
    assert {ids.vcenter_tokens_schedule(links["acme"]), ids.reconcile_schedule("vmware", links["acme"])} <= set(body["paused"])
    assert body["unlinked"] == f"vmware/{links['acme']}"
    gone = await stack.api.get(f"/v1/admin/links/vmware/{links['acme']}", headers=stack.admin_headers)
    kept = await stack.api.get(f"/v1/admin/links/vmware/{links['globex']}", headers=stack.admin_headers)
    assert (gone.status_code, kept.status_code) == (404, 200), (gone.text, kept.text)
    described = await stack.client.get_schedule_handle(ids.vcenter_tokens_schedule(links["globex"])).describe()
    assert not described.schedule.state.paused
    dry = await stack.api.post("/v1/admin/reconcile", headers=stack.admin_headers,
                               json={"provider": "vmware", "account": links["globex"], "dry_run": True, "wait": True})
    assert dry.status_code == 200 and dry.json()["results"][0]["managed_seen"] == 1, dry.text

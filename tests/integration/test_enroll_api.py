"""Enrollment through the API against a real dev server and the local clouds.

A GCP VM is created through the Compute API, fetches its identity token from its metadata server
with the real request shape, registers, and its agent registers with the activation it got:
the managed instance ends up online in its customer's systems account with the right Patch Group.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import boto3
import httpx
import pytest
from google.cloud import compute_v1

from temporalio.testing import WorkflowEnvironment

from clouds.gcp.compute import instances_client
from contracts import ids
from contracts.enrollment import EnrollResult
from localclouds.aws.agent_client import AgentClient
from tests.integration.stack import Stack, eventually, start_stack

pytestmark = pytest.mark.integration

ZONE = "us-east1-b"
IDENTITY = "/computeMetadata/v1/instance/service-accounts/default/identity"


@pytest.fixture(scope="module")
async def stack(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as exits:
        prefix = f"i{uuid.uuid4().hex[:8]}-"
        yield await start_stack(exits, dev_env.client, tmp_path_factory.mktemp("state"), prefix)


def _project() -> str:
    return f"acme-{uuid.uuid4().hex[:10]}"


def _create_vm(stack: Stack, project: str, labels: dict[str, str]) -> str:
    sdk = instances_client(api_endpoint=stack.settings.gcp.compute_endpoint, credentials_mode="anonymous")
    name = f"vm-{uuid.uuid4().hex[:10]}"
    sdk.insert(
        project=project, zone=ZONE,
        instance_resource=compute_v1.Instance(name=name, machine_type=f"zones/{ZONE}/machineTypes/e2-small", labels=labels),
    ).result(timeout=10)
    return name


async def _identity(stack: Stack, vm: str) -> str:
    base = stack.local["gcp"]["metadata"].replace("{name}", vm)
    async with httpx.AsyncClient() as http:
        response = await http.get(
            base + IDENTITY,
            params={"audience": stack.settings.gcp.audience, "format": "full"},
            headers={"Metadata-Flavor": "Google"},
        )
    response.raise_for_status()
    return response.text


def _registration(token: str, hostname: str = "web-1") -> dict:
    return {
        "provider": "gcp",
        "identity": {"token": token},
        "hostname": hostname,
        "platform": {"os": "ubuntu", "version": "22.04"},
    }


def _ssm_in(stack: Stack, account_id: str):  # noqa: ANN202
    sts = boto3.client("sts", endpoint_url=stack.settings.aws.endpoint_url, region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="test")["Credentials"]
    return boto3.client(
        "ssm", endpoint_url=stack.settings.aws.endpoint_url, region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"],
    )


async def _register_agent(stack: Stack, activation: dict) -> str:
    def register() -> str:
        agent = AgentClient(stack.settings.aws.endpoint_url, activation["region"])
        registration = agent.register(activation["id"], activation["code"])
        session = agent.session(registration)
        session.update_instance_information(
            AgentVersion="3.3.0.0", PlatformName="Ubuntu", PlatformType="Linux", PlatformVersion="22.04",
            ComputerName="web-1", IPAddress="10.0.0.5", AgentStatus="Active",
        )
        return registration.instance_id

    return await asyncio.to_thread(register)


async def test_a_gcp_vm_enrolls_end_to_end(stack: Stack) -> None:
    project = _project()
    assert (await stack.link(provider="gcp", cloud_account=project, customer="acme")).status_code == 201
    vm = _create_vm(stack, project, {"rackspace-addon-patching": "true", "rackspace-addon-patching-patchgroup": "early"})
    token = await _identity(stack, vm)

    response = await stack.api.post("/v1/registrations", json=_registration(token))
    if response.status_code == 202:  # the systems account was still being vended: poll as the script does
        location = response.headers["location"]
        response = await eventually(lambda: _poll(stack, location), timeout=90)
    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert body["patch_group"] == "early"
    assert body["activation"]["code"] and body["activation"]["id"]
    account = body["systems_account"]

    instance_id = await _register_agent(stack, body["activation"])
    key = f"{project}/{instance_from(token)}"
    handle = stack.client.get_workflow_handle(ids.enrollment("gcp", key), result_type=EnrollResult)
    result = await asyncio.wait_for(handle.result(), timeout=90)
    assert result.managed_instance_id == instance_id
    # The activation code crossed Temporal sealed: its history never holds it in clear.
    history = _payload_text(await handle.fetch_history())
    assert body["activation"]["id"] in history  # the check below reads real payloads
    assert body["activation"]["code"] not in history
    assert "sealed:v1:" in history

    ssm = _ssm_in(stack, account)
    tags = {t["Key"]: t["Value"] for t in ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance_id)["TagList"]}
    assert tags["Patch Group"] == "early"
    assert tags["fleetpatch:instance-key"] == key
    baselines = ssm.describe_patch_baselines(Filters=[{"Key": "NAME_PREFIX", "Values": ["fleetpatch-"]}], MaxResults=100)["BaselineIdentities"]
    assert len(baselines) == 24
    groups = {g["PatchGroup"] for g in ssm.describe_patch_groups()["Mappings"]}
    assert {"early", "on-time", "late"} <= groups
    # Its one activation is used up and deleted.
    assert ssm.describe_activations()["ActivationList"] == []

    # Searchable in Temporal by customer and state.
    async def visible() -> bool:
        query = f"WorkflowType = 'EnrollVm' AND Customer = 'acme' AND CloudAccount = '{project}' AND EnrollmentState = 'enrolled'"
        return [w async for w in stack.client.list_workflows(query)] != []

    await eventually(visible, timeout=30)

    # Trust on first use: the same VM again is refused and leaves nothing behind.
    again = await stack.api.post("/v1/registrations", json=_registration(await _identity(stack, vm)))
    assert again.status_code == 409, again.text
    assert again.json()["error"] == "AlreadyEnrolled"
    assert ssm.describe_activations()["ActivationList"] == []


def _payload_text(history) -> str:  # noqa: ANN001 - temporalio WorkflowHistory
    """Every payload's data in a workflow history, decoded, as one string."""
    from google.protobuf.message import Message
    from temporalio.api.common.v1 import Payload

    found: list[str] = []

    def walk(message: Message) -> None:
        if isinstance(message, Payload):
            found.append(message.data.decode(errors="replace"))
            return
        for field, value in message.ListFields():
            if field.type != field.TYPE_MESSAGE:
                continue
            if isinstance(value, Message):
                walk(value)
                continue
            items = value.values() if hasattr(value, "keys") else value  # map or repeated field
            for item in items:
                if isinstance(item, Message):
                    walk(item)

    for event in history.events:
        walk(event)
    return "\n".join(found)


async def _poll(stack: Stack, location: str) -> httpx.Response | None:
    response = await stack.api.get(location)
    return response if response.status_code != 202 else None


def instance_from(token: str) -> str:
    from clouds.gcp.verify import peek_gcp_instance_key

    return peek_gcp_instance_key(token)[1]


async def test_fifty_concurrent_registrations_give_one_activation(stack: Stack) -> None:
    project = _project()
    await stack.link(provider="gcp", cloud_account=project, customer="globex")
    vm = _create_vm(stack, project, {"rackspace-addon-patching": "true"})
    token = await _identity(stack, vm)
    responses = await asyncio.gather(*(stack.api.post("/v1/registrations", json=_registration(token)) for _ in range(50)))
    codes = sorted(r.status_code for r in responses)
    # A registration repeated while the enrollment runs gets that enrollment's answer: no 409 loop.
    # Past Temporal's in-flight updates per workflow (10), the rest are told to retry (429).
    assert set(codes) <= {201, 202, 429}, codes
    assert codes.count(429) <= 40, codes
    limited = [r for r in responses if r.status_code == 429]
    assert all(int(r.headers["retry-after"]) >= 1 for r in limited)
    answered = [await _answer(stack, r) for r in responses if r.status_code != 429]
    assert len({a["activation"]["id"] for a in answered}) == 1, codes
    assert len({a["enrollment_id"] for a in answered}) == len(answered)  # each its own id, each can poll
    # The ones told to retry get the same answer when they do.
    again = await _answer(stack, await stack.api.post("/v1/registrations", json=_registration(await _identity(stack, vm))))
    assert again["activation"]["id"] == answered[0]["activation"]["id"]
    # Exactly one run of the enrollment workflow.
    key = f"{project}/{instance_from(token)}"
    runs = [w async for w in stack.client.list_workflows(f"WorkflowId = '{ids.enrollment('gcp', key)}'")]
    assert len(runs) == 1


async def _answer(stack: Stack, response: httpx.Response) -> dict:
    if response.status_code == 202:
        response = await eventually(lambda: _poll(stack, response.headers["location"]), timeout=90)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def test_a_lost_answer_is_answered_again(stack: Stack) -> None:
    """The VM lost its answer (the API died): it registers again with a fresh identity and gets the
    running enrollment's activation, and that activation enrolls it."""
    project = _project()
    await stack.link(provider="gcp", cloud_account=project, customer="initech")
    vm = _create_vm(stack, project, {"rackspace-addon-patching": "true"})
    first = await _answer(stack, await stack.api.post("/v1/registrations", json=_registration(await _identity(stack, vm))))
    again = await _answer(stack, await stack.api.post("/v1/registrations", json=_registration(await _identity(stack, vm))))
    assert again["activation"] == first["activation"]
    assert again["enrollment_id"] != first["enrollment_id"]
    instance_id = await _register_agent(stack, again["activation"])
    token = await _identity(stack, vm)
    handle = stack.client.get_workflow_handle(ids.enrollment("gcp", f"{project}/{instance_from(token)}"), result_type=EnrollResult)
    assert (await asyncio.wait_for(handle.result(), timeout=90)).managed_instance_id == instance_id


async def _runs(stack: Stack, key: str, status: str | None = None) -> int:
    query = f"WorkflowType = 'EnrollVm' AND InstanceKey = '{key}'"
    if status:
        query += f" AND ExecutionStatus = '{status}'"
    return len([w async for w in stack.client.list_workflows(query)])


async def test_unlinked_project_is_403_and_leaves_nothing(stack: Stack) -> None:
    project = _project()
    vm = _create_vm(stack, project, {"rackspace-addon-patching": "true"})
    token = await _identity(stack, vm)
    response = await stack.api.post("/v1/registrations", json=_registration(token))
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "TenantNotLinked"
    vended = [w async for w in stack.client.list_workflows(f"WorkflowType = 'SystemsAccount' AND CloudAccount = '{project}'")]
    assert vended == []
    # A refusal completes its run with a refused result: FAILED means something broke.
    key = f"{project}/{instance_from(token)}"
    handle = stack.client.get_workflow_handle(ids.enrollment("gcp", key), result_type=EnrollResult)
    result = await asyncio.wait_for(handle.result(), timeout=30)
    assert result.refused == "TenantNotLinked"
    assert await _runs(stack, key, "Failed") == 0


async def test_unlabelled_vm_is_403(stack: Stack) -> None:
    project = _project()
    await stack.link(provider="gcp", cloud_account=project, customer="acme")
    vm = _create_vm(stack, project, {"rackspace-addon-patching": "false"})
    response = await stack.api.post("/v1/registrations", json=_registration(await _identity(stack, vm)))
    assert response.status_code == 403
    assert response.json()["error"] == "PatchingNotEnabled"


async def test_forged_identity_is_401_and_starts_nothing(stack: Stack) -> None:
    project = _project()
    await stack.link(provider="gcp", cloud_account=project, customer="acme")
    vm = _create_vm(stack, project, {"rackspace-addon-patching": "true"})
    token = await _identity(stack, vm)
    key = f"{project}/{instance_from(token)}"
    before = len([w async for w in stack.client.list_workflows("WorkflowType = 'EnrollVm'")])
    header, payload, signature = token.split(".")
    forged = ".".join([header, payload, signature[:-8] + ("A" * 8 if not signature.endswith("A" * 8) else "B" * 8)])
    for _ in range(5):
        response = await stack.api.post("/v1/registrations", json=_registration(forged))
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "IdentitySignatureInvalid"
    assert await _runs(stack, key) == 0  # the forgery named a real VM and took nothing of it
    assert len([w async for w in stack.client.list_workflows("WorkflowType = 'EnrollVm'")]) == before
    vended = [w async for w in stack.client.list_workflows(f"WorkflowType = 'SystemsAccount' AND CloudAccount = '{project}'")]
    assert vended == []
    # The real VM's registration is unaffected.
    answer = await _answer(stack, await stack.api.post("/v1/registrations", json=_registration(await _identity(stack, vm))))
    assert answer["activation"]["id"]

    async def one_run() -> bool:
        return await _runs(stack, key) == 1

    await eventually(one_run, timeout=30)
    assert await _runs(stack, key, "Failed") == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"provider": "gcp", "provider": "gcp"}', 400),
        (b'{"provider": "gcp", "identity": {"token": "x"}, "hostname": "h", "platform": {"os": "plan9"}}', 400),
        # Well shaped, but the identity cannot be read: refused like any other identity (401).
        (b'{"provider": "gcp", "identity": {"token": "a.b.c"}, "hostname": "h", "platform": {"os": "ubuntu"}}', 401),
        (b'{"provider": "azure", "identity": {"token": "x"}, "hostname": "h", "platform": {"os": "ubuntu"}}', 400),
        (b"x" * (65 * 1024), 413),
    ],
)
async def test_bad_input_is_never_a_500(stack: Stack, body: bytes, status: int) -> None:
    response = await stack.api.post("/v1/registrations", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert "error" in response.json()


async def test_admin_endpoints_need_the_token(stack: Stack) -> None:
    assert (await stack.api.get("/v1/admin/links")).status_code == 401
    wrong = await stack.api.get("/v1/admin/links", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    bad = await stack.api.post("/v1/admin/links", json={"provider": "aws", "cloud_account": "123456789012", "customer": "x"}, headers=stack.admin_headers)
    assert bad.status_code == 400  # an aws link needs its role ARN
    listed = await stack.api.get("/v1/admin/links", headers=stack.admin_headers)
    assert listed.status_code == 200 and isinstance(listed.json()["links"], list)





async def test_an_operator_allows_reenrollment(stack: Stack) -> None:
    project = _project()
    await stack.link(provider="gcp", cloud_account=project, customer="acme")
    vm = _create_vm(stack, project, {"rackspace-addon-patching": "true"})
    first = await stack.api.post("/v1/registrations", json=_registration(await _identity(stack, vm)))
    if first.status_code == 202:
        location = first.headers["location"]
        first = await eventually(lambda: _poll(stack, location), timeout=90)
    managed = await _register_agent(stack, first.json()["activation"])
    token = await _identity(stack, vm)
    key = f"{project}/{instance_from(token)}"
    await asyncio.wait_for(stack.client.get_workflow_handle(ids.enrollment("gcp", key)).result(), timeout=90)
    assert (await stack.api.post("/v1/registrations", json=_registration(token))).status_code == 409

    allowed = await stack.api.post(
        "/v1/admin/enrollments/reenroll", json={"provider": "gcp", "instance_key": key}, headers=stack.admin_headers
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["managed_instance_id"] == managed
    again = await stack.api.post("/v1/registrations", json=_registration(await _identity(stack, vm)))
    assert again.status_code == 201, again.text
    assert again.json()["activation"]["id"] != first.json()["activation"]["id"]


async def test_relinking_reshapes_the_accounts_patch_windows(stack: Stack) -> None:
    project = _project()
    await stack.link(provider="gcp", cloud_account=project, customer="acme")
    vm = _create_vm(stack, project, {"rackspace-addon-patching": "true"})
    first = await stack.api.post("/v1/registrations", json=_registration(await _identity(stack, vm)))
    if first.status_code == 202:
        location = first.headers["location"]
        first = await eventually(lambda: _poll(stack, location), timeout=90)
    account = first.json()["systems_account"]
    schedule = stack.client.get_schedule_handle(f"patch-window/{account}/early")
    assert (await schedule.describe()).schedule.spec.time_zone_name == "UTC"

    bad = await stack.link(provider="gcp", cloud_account=project, customer="acme", windows={"early": {"hour": 25}})
    assert bad.status_code == 400
    relinked = await stack.link(
        provider="gcp", cloud_account=project, customer="acme", time_zone="America/New_York",
        windows={"early": {"hour": 4, "max_concurrency": "25%"}},
    )
    assert relinked.status_code == 201, relinked.text
    assert sorted(relinked.json()["windows_updated"]) == sorted(f"patch-window/{account}/{g}" for g in ("early", "late", "on-time"))
    spec = (await schedule.describe()).schedule.spec
    assert spec.time_zone_name == "America/New_York"
    assert [r.start for c in spec.calendars for r in c.hour] == [4]


async def test_the_enrollment_records_its_identity_evidence_never_the_identity(stack: Stack) -> None:
    """The audit chain starts with the real verifier's key id and a digest of the real token; the
    token itself is nowhere in the estate store."""
    import base64
    import json

    from sqlalchemy import select

    from contracts.evidence import identity_digest
    from estate import db
    from estate.schema import EnrollmentEvidenceRow

    project = _project()
    await stack.link(provider="gcp", cloud_account=project, customer="acme")
    vm = _create_vm(stack, project, {"rackspace-addon-patching": "true"})
    token = await _identity(stack, vm)
    response = await stack.api.post("/v1/registrations", json=_registration(token))
    if response.status_code == 202:
        location = response.headers["location"]
        response = await eventually(lambda: _poll(stack, location), timeout=90)
    managed = await _register_agent(stack, response.json()["activation"])
    key = f"{project}/{instance_from(token)}"
    handle = stack.client.get_workflow_handle(ids.enrollment("gcp", key))
    await asyncio.wait_for(handle.result(), timeout=90)
    run_id = (await handle.describe()).run_id

    engine = db.make_engine(stack.settings.database_url)
    try:
        with db.sessions(engine)() as session:
            row = session.scalars(select(EnrollmentEvidenceRow).where(EnrollmentEvidenceRow.instance_key == key)).one()
    finally:
        engine.dispose()
    kid = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]
    assert (row.provider, row.key_kind, row.key_id, row.managed_instance_id) == ("gcp", "kid", kid, managed)
    assert row.identity_sha256 == identity_digest({"token": token}) and (row.workflow_id, row.run_id) == (handle.id, run_id)
    assert all(token.split(".")[2] not in str(getattr(row, c.key)) for c in EnrollmentEvidenceRow.__table__.c)
    if stack.settings.database_url.startswith("sqlite"):  # the whole file, WAL included
        store = b"".join(p.read_bytes() for p in stack.settings.state_dir.glob("estate.db*"))
        assert store and token.encode() not in store and token.split(".")[2].encode() not in store

    # The row's instance appears with ComplianceSync; its audit chain then starts with this evidence.
    synced = await stack.api.post("/v1/admin/compliance/sync", params={"wait": "true"},
                                  json={"accounts": [response.json()["systems_account"]]}, headers=stack.admin_headers)
    assert synced.status_code == 200, synced.text
    detail = (await stack.api.get(f"/v1/instances/{managed}", headers=stack.admin_headers)).json()
    assert detail["evidence"]["key_id"] == kid and detail["evidence"]["digest"] == row.identity_sha256
    assert detail["enrollment"] == {**detail["enrollment"], "workflow_id": handle.id, "run_id": run_id}

"""Reconcile through the admin API (what ``fleetpatch reconcile --wait`` calls) against a real dev
server and the local clouds: VMs enroll for real, then change the way their owners change them
(the cloud's own SDK), and reconcile brings SSM back in line -- or, dry, only says what it would do."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import boto3
import httpx
import pytest
from google.cloud import compute_v1
from temporalio.testing import WorkflowEnvironment

from clouds.aws.ssm_config import SERVICE_ROLE
from clouds.azure.arm import compute_client_factory
from clouds.gcp.compute import instances_client
from clouds.gcp.verify import peek_gcp_instance_key
from contracts import ids
from contracts.enrollment import TAG_CLOUD_ACCOUNT, TAG_INSTANCE_KEY, EnrollResult
from localclouds.aws.agent_client import AgentClient
from tests.integration.stack import Stack, eventually, start_stack

pytestmark = pytest.mark.integration

ZONE = "us-east1-b"
IDENTITY = "/computeMetadata/v1/instance/service-accounts/default/identity"
ON = {"rackspace-addon-patching": "true"}


@pytest.fixture(scope="module")
async def stack(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as exits:
        yield await start_stack(exits, dev_env.client, tmp_path_factory.mktemp("state"), f"r{uuid.uuid4().hex[:8]}-")


def _ssm_in(stack: Stack, account_id: str) -> Any:
    endpoint = stack.settings.aws.endpoint_url
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
                            RoleSessionName="test")["Credentials"]
    return boto3.client("ssm", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


def _agent(stack: Stack, activation: dict[str, str], region: str = "us-east-1") -> str:
    agent = AgentClient(stack.settings.aws.endpoint_url, region)
    registration = agent.register(activation["id"], activation["code"])
    agent.session(registration).update_instance_information(
        AgentVersion="3.3.0.0", PlatformName="Ubuntu", PlatformType="Linux", PlatformVersion="22.04",
        ComputerName="vm", IPAddress="10.0.0.5", AgentStatus="Active",
    )
    return registration.instance_id


async def _register(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    response = await stack.api.post("/v1/registrations", json=body)
    if response.status_code == 202:
        location = response.headers["location"]

        async def answered() -> httpx.Response | None:
            polled = await stack.api.get(location)
            return polled if polled.status_code != 202 else None

        response = await eventually(answered, timeout=90)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _enrolled(stack: Stack, provider: str, key: str, activation: dict[str, str]) -> tuple[str, str]:
    managed = await asyncio.to_thread(_agent, stack, activation)
    handle = stack.client.get_workflow_handle(ids.enrollment(provider, key), result_type=EnrollResult)
    result = await asyncio.wait_for(handle.result(), timeout=90)
    assert result.managed_instance_id == managed
    return managed, result.systems_account


class Gcp:
    def __init__(self, stack: Stack, project: str) -> None:
        self.stack, self.project = stack, project
        self.sdk = instances_client(api_endpoint=stack.settings.gcp.compute_endpoint, credentials_mode="anonymous")

    def create(self, labels: dict[str, str]) -> str:
        name = f"vm-{uuid.uuid4().hex[:10]}"
        self.sdk.insert(project=self.project, zone=ZONE, instance_resource=compute_v1.Instance(
            name=name, machine_type=f"zones/{ZONE}/machineTypes/e2-small", labels=labels)).result(timeout=10)
        return name

    def set_labels(self, name: str, labels: dict[str, str]) -> None:
        current = self.sdk.get(project=self.project, zone=ZONE, instance=name)
        request = compute_v1.InstancesSetLabelsRequest(labels=labels, label_fingerprint=current.label_fingerprint)
        self.sdk.set_labels(project=self.project, zone=ZONE, instance=name,
                            instances_set_labels_request_resource=request).result(timeout=10)

    def delete(self, name: str) -> None:
        self.sdk.delete(project=self.project, zone=ZONE, instance=name).result(timeout=10)

    async def enroll(self, labels: dict[str, str]) -> tuple[str, str, str, str]:
        """A VM enrolled for real: (name, instance key, managed instance, systems account)."""
        name = self.create(labels)
        base = self.stack.local["gcp"]["metadata"].replace("{name}", name)
        async with httpx.AsyncClient() as http:
            token = (await http.get(base + IDENTITY, params={"audience": self.stack.settings.gcp.audience, "format": "full"},
                                    headers={"Metadata-Flavor": "Google"})).text
        body = {"provider": "gcp", "identity": {"token": token}, "hostname": name,
                "platform": {"os": "ubuntu", "version": "22.04"}}
        answer = await _register(self.stack, body)
        key = f"{self.project}/{peek_gcp_instance_key(token)[1]}"
        managed, account = await _enrolled(self.stack, "gcp", key, answer["activation"])
        return name, key, managed, account


async def _reconcile(stack: Stack, provider: str, account: str, *, dry_run: bool) -> dict[str, Any]:
    response = await stack.api.post("/v1/admin/reconcile", headers=stack.admin_headers,
                                    json={"provider": provider, "account": account, "dry_run": dry_run, "wait": True})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    return result


def _nodes(ssm: Any, cloud_account: str) -> dict[str, dict[str, str]]:
    """Managed instance -> its tags, for one cloud account's instances."""
    rows = ssm.describe_instance_information(
        Filters=[{"Key": f"tag:{TAG_CLOUD_ACCOUNT}", "Values": [cloud_account]}])["InstanceInformationList"]
    return {
        r["InstanceId"]: {t["Key"]: t["Value"] for t in ssm.list_tags_for_resource(
            ResourceType="ManagedInstance", ResourceId=r["InstanceId"])["TagList"]}
        for r in rows
    }


async def test_gcp_reconcile_dry_run_then_for_real(stack: Stack) -> None:
    project = f"acme-{uuid.uuid4().hex[:10]}"
    linked = await stack.link(provider="gcp", cloud_account=project, customer="acme")
    assert linked.status_code == 201 and linked.json()["reconcile_schedule"] == "created"
    schedule = await stack.client.get_schedule_handle(ids.reconcile_schedule("gcp", project)).describe()
    assert schedule.schedule.spec.intervals[0].every.total_seconds() == 3600

    gcp = Gcp(stack, project)
    deleted, kept, relabelled, unlabelled, cloned = [
        await gcp.enroll({**ON, "rackspace-addon-patching-patchgroup": "early"}) for _ in range(5)
    ]
    account = deleted[3]
    ssm = _ssm_in(stack, account)
    never = gcp.create(dict(ON))  # labelled, but its startup script never ran
    gcp.delete(deleted[0])
    leftover = ssm.create_activation(  # an activation fleetpatch left for the deleted VM
        Description="fleetpatch enroll/leftover", IamRole=SERVICE_ROLE, RegistrationLimit=1,
        Tags=[{"Key": TAG_INSTANCE_KEY, "Value": deleted[1]}, {"Key": TAG_CLOUD_ACCOUNT, "Value": project}])
    gcp.set_labels(relabelled[0], {**ON, "rackspace-addon-patching-patchgroup": "late"})
    gcp.set_labels(unlabelled[0], {"rackspace-addon-patching": "false"})
    time.sleep(1.1)  # the clone registers visibly later than the original
    clone_tags = [{"Key": k, "Value": v} for k, v in _nodes(ssm, project)[cloned[2]].items()]
    created = ssm.create_activation(IamRole=SERVICE_ROLE, RegistrationLimit=1, Tags=clone_tags)
    clone = await asyncio.to_thread(_agent, stack, {"id": created["ActivationId"], "code": created["ActivationCode"]})
    before = _nodes(ssm, project)
    assert len(before) == 6

    dry = await _reconcile(stack, "gcp", project, dry_run=True)
    expected = {
        ("deregister", deleted[2]), ("delete-activation", leftover["ActivationId"]), ("retag", relabelled[2]),
        ("deregister", unlabelled[2]), ("deregister", cloned[2]),
    }
    got = {(a["kind"], a["target"]) for a in dry["actions"]}
    assert expected <= got, got
    reported = [a for a in dry["actions"] if a["kind"] == "report-unenrolled"]
    assert [a["evidence"]["vm_name"] for a in reported] == [never]
    assert dry["dry_run"] and dry["systems_account"] == account and not any(a["applied"] for a in dry["actions"])
    assert dry["vms_seen"] == 5 and dry["managed_seen"] == 6
    assert _nodes(ssm, project) == before  # a dry run changes nothing
    assert _recorded(stack, project) == []  # not even the estate store
    assert leftover["ActivationId"] in {a["ActivationId"] for a in ssm.describe_activations()["ActivationList"]}
    retag = next(a for a in dry["actions"] if a["kind"] == "retag")
    assert retag["evidence"]["tag_was"] == "early" and retag["tags"] == {"Patch Group": "late"}
    clone_action = next(a for a in dry["actions"] if a["target"] == cloned[2])
    assert clone_action["evidence"]["kept"] == clone

    done = await _reconcile(stack, "gcp", project, dry_run=False)
    assert all(a["applied"] for a in done["actions"] if a["kind"] != "report-unenrolled"), done
    after = _nodes(ssm, project)
    assert set(after) == {kept[2], relabelled[2], clone}
    assert after[relabelled[2]]["Patch Group"] == "late" and after[kept[2]]["Patch Group"] == "early"
    assert leftover["ActivationId"] not in {a["ActivationId"] for a in ssm.describe_activations()["ActivationList"]}

    # Every action, with its evidence, is in the estate store too (the report included).
    recorded = _recorded(stack, project)
    assert sorted((r.kind, r.target, r.applied) for r in recorded) == sorted(
        (a["kind"], a["target"], a["applied"]) for a in done["actions"])
    assert next(r for r in recorded if r.kind == "retag").evidence == json.dumps(retag["evidence"], sort_keys=True)

    again = await _reconcile(stack, "gcp", project, dry_run=False)
    assert [a["kind"] for a in again["actions"]] == ["report-unenrolled"]  # nothing else left to do


async def test_a_deleted_azure_vm_is_no_longer_a_managed_instance(stack: Stack) -> None:
    subscription = str(uuid.uuid4())
    assert (await stack.link(provider="azure", cloud_account=subscription, customer="initech")).status_code == 201
    compute = compute_client_factory(stack.settings.azure)(subscription)
    enrolled = []
    for _ in range(2):
        name = f"vm{uuid.uuid4().hex[:8]}"
        await asyncio.to_thread(lambda: compute.virtual_machines.begin_create_or_update(  # noqa: B023
            "rg-web", name, {"location": "eastus", "tags": dict(ON),
                             "properties": {"storageProfile": {"osDisk": {"osType": "Linux"}}, "osProfile": {"computerName": name}}},
        ).result())
        imds = stack.local["azure"]["imds"].replace("{name}", name)
        async with httpx.AsyncClient(headers={"Metadata": "true"}) as http:
            nonce = (await stack.api.get("/v1/challenge")).json()["nonce"]
            attested = (await http.get(f"{imds}/metadata/attested/document", params={"api-version": "2020-09-01", "nonce": nonce})).json()
            instance = (await http.get(f"{imds}/metadata/instance", params={"api-version": "2021-02-01"})).json()
        body = {"provider": "azure", "hostname": name, "platform": {"os": "rhel", "version": "9.4"},
                "identity": {"attested": attested, "nonce": nonce, "resource_id": instance["compute"]["resourceId"]}}
        answer = await _register(stack, body)
        key = f"{subscription}/{instance['compute']['vmId']}"
        enrolled.append((name, *await _enrolled(stack, "azure", key, answer["activation"])))
    (gone, gone_managed, account), (_, stays, _) = enrolled
    synced = await stack.api.post("/v1/admin/compliance/sync", params={"wait": "true"}, headers=stack.admin_headers)
    assert synced.status_code == 200, synced.text  # both instances are in the estate store
    await asyncio.to_thread(lambda: compute.virtual_machines.begin_delete("rg-web", gone).result())

    result = await _reconcile(stack, "azure", subscription, dry_run=False)
    assert [(a["kind"], a["target"], a["applied"]) for a in result["actions"]] == [("deregister", gone_managed, True)]
    assert set(_nodes(_ssm_in(stack, account), subscription)) == {stays}
    # The instance's audit chain shows what reconcile did to it, with the evidence.
    shown = await stack.api.get(f"/v1/instances/{gone_managed}", headers=stack.admin_headers)
    assert shown.status_code == 200, shown.text
    [event] = shown.json()["reconcile"]
    assert (event["action"], event["applied"], event["systems_account"]) == ("deregister", True, account)
    assert event["evidence"] == result["actions"][0]["evidence"] and event["reason"] == result["actions"][0]["reason"]
    assert (await stack.api.get(f"/v1/instances/{stays}", headers=stack.admin_headers)).json()["reconcile"] == []


async def test_offboarding_a_gcp_account_and_removing_one_instance(stack: Stack) -> None:
    project = f"umbr-{uuid.uuid4().hex[:10]}"
    assert (await stack.link(provider="gcp", cloud_account=project, customer="umbrella")).status_code == 201
    gcp = Gcp(stack, project)
    first, second, third = [await gcp.enroll(dict(ON)) for _ in range(3)]
    account = first[3]
    ssm = _ssm_in(stack, account)
    pending = ssm.create_activation(Description="fleetpatch enroll/pending", IamRole=SERVICE_ROLE, RegistrationLimit=1,
                                    Tags=[{"Key": TAG_INSTANCE_KEY, "Value": f"{project}/42"},
                                          {"Key": TAG_CLOUD_ACCOUNT, "Value": project}])

    # One VM decommissioned: only its managed instance leaves.
    removed = await stack.api.post("/v1/admin/instances/remove", headers=stack.admin_headers,
                                   json={"provider": "gcp", "instance_key": third[1]})
    assert removed.status_code == 200, removed.text
    assert [(a["kind"], a["target"], a["applied"]) for a in removed.json()["result"]["actions"]] == [
        ("deregister", third[2], True)]
    assert set(_nodes(ssm, project)) == {first[2], second[2]}

    async def offboard(yes: bool) -> dict[str, Any]:
        response = await stack.api.post("/v1/admin/offboard", headers=stack.admin_headers,
                                        json={"provider": "gcp", "account": project, "yes": yes})
        assert response.status_code == 200, response.text
        return response.json()

    schedules = [ids.reconcile_schedule("gcp", project), *(ids.patch_window_schedule(account, g) for g in ("early", "on-time", "late"))]
    dry = await offboard(False)
    assert dry["dry_run"] and sorted(dry["would_pause"]) == sorted(schedules)
    assert {(a["kind"], a["target"]) for a in dry["result"]["actions"]} == {
        ("deregister", first[2]), ("deregister", second[2]), ("delete-activation", pending["ActivationId"])}
    assert "never closes an AWS account" in dry["note"] and account in dry["note"]
    assert set(_nodes(ssm, project)) == {first[2], second[2]}  # a dry run changes nothing
    for sid in schedules:
        assert not (await stack.client.get_schedule_handle(sid).describe()).schedule.state.paused

    done = await offboard(True)
    assert sorted(done["paused"]) == sorted(schedules) and done["unlinked"] == f"gcp/{project}"
    assert all(a["applied"] for a in done["result"]["actions"])
    assert _nodes(ssm, project) == {}
    assert pending["ActivationId"] not in {a["ActivationId"] for a in ssm.describe_activations()["ActivationList"]}
    for sid in schedules:
        assert (await stack.client.get_schedule_handle(sid).describe()).schedule.state.paused
    links = (await stack.api.get("/v1/admin/links", headers=stack.admin_headers)).json()["links"]
    assert project not in {l["cloud_account"] for l in links}
    again = await stack.api.post("/v1/admin/offboard", headers=stack.admin_headers,
                                 json={"provider": "gcp", "account": project, "yes": True})
    assert again.status_code == 404 and again.json()["error"] == "TenantNotLinked"


async def test_reconcile_brings_an_accounts_configuration_and_windows_to_this_release(stack: Stack) -> None:
    """A release with a new SSM configuration version and reshaped windows reaches an account that
    was configured earlier, through reconcile alone: no re-link, no new enrollment."""
    import json

    from clouds.aws.ssm_config import VERSION_PARAMETER
    from contracts.names import WorkflowName
    from contracts.providers import Provider
    from contracts.reconcile import ReconcileInput, ReconcileResult
    from scheduling.reconcile import orchestrator_queue

    project = f"drft-{uuid.uuid4().hex[:10]}"
    assert (await stack.link(provider="gcp", cloud_account=project, customer="drift")).status_code == 201
    _, _, _, account = await Gcp(stack, project).enroll(dict(ON))
    ssm = _ssm_in(stack, account)
    assert json.loads(ssm.get_parameter(Name=VERSION_PARAMETER)["Parameter"]["Value"])["version"] == 1
    late = ids.patch_window_schedule(account, "late")
    await stack.client.get_schedule_handle(late).delete()  # a window lost (or shaped by an older release)

    prefix = stack.settings.task_queue_prefix
    result = await stack.client.execute_workflow(
        WorkflowName.RECONCILE, ReconcileInput(provider=Provider.GCP, cloud_account=project, configuration_version=2,
                                               queue_prefix=prefix),
        id=f"reconcile/gcp/{project}/drift", task_queue=orchestrator_queue(prefix), result_type=ReconcileResult,
    )
    assert result.configuration_version == 2 and result.actions == []
    assert json.loads(ssm.get_parameter(Name=VERSION_PARAMETER)["Parameter"]["Value"])["version"] == 2
    baselines = ssm.describe_patch_baselines(Filters=[{"Key": "NAME_PREFIX", "Values": ["fleetpatch-"]}], MaxResults=100)
    assert len(baselines["BaselineIdentities"]) == 24
    assert late in result.windows_ensured
    assert (await stack.client.get_schedule_handle(late).describe()).schedule.spec.calendars


async def test_ec2_tags_follow_labels_through_the_links_role(stack: Stack) -> None:
    """EC2: the customer's own account, reached through the link's role; the fleetpatch tags on
    each instance follow its labels, and a labelled instance that never enrolled is reported."""
    from contracts.enrollment import TAG_ENROLLMENT_ID, TAG_PATCH_GROUP

    account = f"{uuid.uuid4().int % 10**12:012d}"
    role = f"arn:aws:iam::{account}:role/FleetpatchAccess"
    linked = await stack.link(provider="aws", cloud_account=account, customer="hooli", role_name="FleetpatchAccess",
                             default_patch_group="late")
    assert linked.status_code == 201, linked.text
    endpoint = stack.settings.aws.endpoint_url
    creds = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1").assume_role(
        RoleArn=role, RoleSessionName="customer")["Credentials"]
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=stack.settings.aws.region,
                       aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                       aws_session_token=creds["SessionToken"])

    def run(tags: dict[str, str]) -> str:
        spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        return ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, TagSpecifications=spec)["Instances"][0]["InstanceId"]

    enrolled = {**ON, TAG_ENROLLMENT_ID: "run-1", TAG_PATCH_GROUP: "early", TAG_INSTANCE_KEY: "x"}
    moved = run({**enrolled, "rackspace-addon-patching-patchgroup": "early"})
    dropped = run({**enrolled, "rackspace-addon-patching": "false"})
    fresh = run(dict(ON))
    ec2.create_tags(Resources=[moved], Tags=[{"Key": "rackspace-addon-patching-patchgroup", "Value": "late"}])

    result = await _reconcile(stack, "aws", account, dry_run=False)
    assert {(a["kind"], a["target"], a["applied"]) for a in result["actions"]} == {
        ("ec2-retag", moved, True), ("ec2-untag", dropped, True), ("report-unenrolled", fresh, False)}
    tags = {i["InstanceId"]: {t["Key"]: t["Value"] for t in i.get("Tags", [])}
            for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    assert tags[moved][TAG_PATCH_GROUP] == "late"
    assert TAG_ENROLLMENT_ID not in tags[dropped] and TAG_PATCH_GROUP not in tags[dropped]
    assert tags[dropped]["rackspace-addon-patching"] == "false"  # the customer's own labels stay


def _recorded(stack: Stack, cloud_account: str) -> list[Any]:
    """The reconcile events the estate store holds for one cloud account."""
    from sqlalchemy import select

    from estate import db
    from estate.reconcile_events import ReconcileEvent

    engine = db.make_engine(stack.settings.database_url)
    try:
        with db.sessions(engine)() as session:
            rows = list(session.scalars(select(ReconcileEvent).where(ReconcileEvent.cloud_account == cloud_account)))
            session.expunge_all()
            return rows
    finally:
        engine.dispose()

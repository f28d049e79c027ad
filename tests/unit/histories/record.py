"""Record a history of every workflow type, replayed by ``test_replay_all.py``:
``python -m tests.unit.histories.record`` (only after an intended, versioned change).

Each scenario runs on the time-skipping server against scripted clouds (the fakes the workflow
tests use), then saves the history of every workflow it ran, children included, as
``{scenario}.{WorkflowType}.json``; the patch windows come from the patching recorder.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.health import HealthActivities
from activities.temporal_ops import TemporalActivities
from clients.api.routes.registration import sa_pairs
from clients.local.tools import temporal_test_server
from config.temporal import register_search_attributes
from contracts import ids, taskqueues
from contracts.enrollment import (
    DeregisterInput,
    Ec2UntagInput,
    EnrollInput,
    EnrollmentPolicy,
    EnrollResult,
    LinkCommand,
    LinkCommandResult,
    LinkKey,
    ListLinksResult,
    ManagedInstance,
    ReenrollInput,
    ReenrollResult,
    RegistrationAnswer,
    TenantLink,
)
from contracts.models import ActivityName, DoctorInput, DoctorResult, VmMetadata
from contracts.names import UpdateName, WorkflowName
from contracts.patching import EnsureWindowsInput, EnsureWindowsResult
from contracts.providers import OsFamily, PatchGroup, Provider, WorkerRole
from contracts.vcenter_tokens import VcenterTokensInput, VcenterTokensResult
from contracts.reconcile import (
    ApplyActionInput,
    ListCloudVmsInput,
    ListCloudVmsResult,
    ListManagedInput,
    ListManagedResult,
    ManagedNode,
    ReconcileInput,
    ReconcileResult,
    RecordReconcileInput,
)
from tests.unit.enrollment.fakes import FakeClouds, Vm
from tests.unit.patching import record_histories
from workers.interceptors import ErrorMappingInterceptor
from workflows.registry import ALL_WORKFLOWS

HERE = Path(__file__).parent / "recorded"
PREFIX = "h0123456789-"
GCP_PROJECT = "proj-recorded"
AWS_ACCOUNT = "111122223333"


class AdminFakes:
    """The link store, the window schedules and the undo steps of re-enrollment, in memory."""

    def __init__(self, clouds: FakeClouds) -> None:
        self._clouds = clouds

    @activity.defn(name=ActivityName.PUT_LINK)
    async def put_link(self, link: TenantLink) -> None:
        self._clouds.links[(link.provider.value, link.cloud_account)] = link

    @activity.defn(name=ActivityName.DELETE_LINK)
    async def delete_link(self, key: LinkKey) -> bool:
        return self._clouds.links.pop((key.provider.value, key.cloud_account), None) is not None

    @activity.defn(name=ActivityName.LIST_LINKS)
    async def list_links(self) -> ListLinksResult:
        return ListLinksResult(links=list(self._clouds.links.values()))

    @activity.defn(name=ActivityName.DEREGISTER_MANAGED_INSTANCE)
    async def deregister_managed_instance(self, inp: DeregisterInput) -> None:
        for key, managed in list(self._clouds.managed.items()):
            if managed.instance_id == inp.instance_id:
                del self._clouds.managed[key]

    @activity.defn(name=ActivityName.ENSURE_WINDOW_SCHEDULES)
    async def ensure_window_schedules(self, inp: EnsureWindowsInput) -> EnsureWindowsResult:
        return EnsureWindowsResult(created=[f"patch-window/{inp.account.account_id}/{g.value}" for g in PatchGroup])

    @activity.defn(name=ActivityName.LIST_CLOUD_VMS)
    async def list_cloud_vms(self, inp: ListCloudVmsInput) -> ListCloudVmsResult:
        return ListCloudVmsResult(vms=[
            VmMetadata(provider=vm.provider, cloud_account=vm.cloud_account, instance_id=vm.instance_id,
                       name=f"vm-{vm.instance_id}", labels=dict(vm.labels), state="RUNNING")
            for vm in self._clouds.vms.values() if (vm.provider, vm.cloud_account) == (inp.provider, inp.cloud_account)
        ])

    @activity.defn(name=ActivityName.LIST_MANAGED_NODES)
    async def list_managed_nodes(self, inp: ListManagedInput) -> ListManagedResult:
        return ListManagedResult(nodes=[
            ManagedNode(instance_id=m.instance_id, instance_key=key, ping_status=m.ping_status,
                        registered_at="2026-11-26T00:00:00+00:00", tags=dict(m.tags))
            for key, m in self._clouds.managed.items() if key.startswith(f"{inp.cloud_account}/")
        ])

    @activity.defn(name=ActivityName.APPLY_RECONCILE_ACTION)
    async def apply_reconcile_action(self, inp: ApplyActionInput) -> None:
        for key, managed in list(self._clouds.managed.items()):
            if managed.instance_id == inp.action.target:
                if inp.action.kind.value == "deregister":
                    del self._clouds.managed[key]
                else:
                    managed.tags.update(inp.action.tags)

    @activity.defn(name=ActivityName.RECORD_RECONCILE_ACTIONS)
    async def record_reconcile_actions(self, inp: RecordReconcileInput) -> int:
        return len(inp.actions)

    @activity.defn(name=ActivityName.UNTAG_EC2_INSTANCE)
    async def untag_ec2_instance(self, inp: Ec2UntagInput) -> None:
        for vm in self._clouds.vms.values():
            if vm.instance_id == inp.instance_id:
                for key in inp.keys:
                    vm.labels.pop(key, None)


@asynccontextmanager
async def workers(client: Client, fake: FakeClouds) -> AsyncIterator[None]:
    admin = AdminFakes(fake)
    specs = [
        (WorkerRole.ORCHESTRATOR, [*TemporalActivities(client).all(), admin.ensure_window_schedules],
         list(ALL_WORKFLOWS)),
        (WorkerRole.AWS, [*fake.aws_activities(), admin.put_link, admin.delete_link, admin.list_links,
                          admin.deregister_managed_instance, admin.list_managed_nodes, admin.apply_reconcile_action,
                          admin.record_reconcile_actions], []),
        (WorkerRole.GCP, [*fake.provider_activities(), admin.list_cloud_vms], []),
        (WorkerRole.EC2, [*fake.provider_activities(), admin.untag_ec2_instance], []),
    ]
    async with AsyncExitStack() as stack:
        for role, acts, wfs in specs:
            queue = taskqueues.for_role(role, PREFIX)
            worker = Worker(client, task_queue=queue, activities=[*acts, HealthActivities(role, queue).ping],
                            workflows=wfs, interceptors=[ErrorMappingInterceptor()])
            await stack.enter_async_context(worker)
        yield


async def save(client: Client, handle: WorkflowHandle, scenario: str, out: Path) -> list[str]:
    """Write the run's history and its children's; the files written."""
    history = await handle.fetch_history()
    written = [_write(out, scenario, handle.id, history.to_json(), history.events[0])]
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            execution = event.child_workflow_execution_started_event_attributes.workflow_execution
            child = await client.get_workflow_handle(execution.workflow_id, run_id=execution.run_id).fetch_history()
            written.append(_write(out, scenario, execution.workflow_id, child.to_json(), child.events[0]))
    return written


def _write(out: Path, scenario: str, workflow_id: str, history_json: str, first_event) -> str:
    kind = first_event.workflow_execution_started_event_attributes.workflow_type.name
    path = out / f"{scenario}.{kind}.json"
    path.write_text(json.dumps({"workflow_id": workflow_id, "history": json.loads(history_json)}, separators=(",", ":")))
    return path.name


def _enroll_input(vm: Vm) -> EnrollInput:
    return EnrollInput(
        provider=vm.provider, instance_key=f"{vm.cloud_account}/{vm.instance_id}", identity={"token": vm.instance_id},
        hostname=f"host-{vm.instance_id}", os=OsFamily.UBUNTU, os_version="22.04",
        secret_digest=hashlib.sha256(b"recorded").hexdigest(), policy=EnrollmentPolicy(), queue_prefix=PREFIX,
    )


async def enroll(client: Client, vm: Vm, as_the_api: bool = False) -> WorkflowHandle:
    """Start EnrollVm (``as_the_api``: with the search attributes the API's start carries),
    register (the API's update) and wait for its result."""
    inp = _enroll_input(vm)
    handle = await client.start_workflow(
        WorkflowName.ENROLL_VM, inp, id=ids.enrollment(inp.provider, inp.instance_key),
        task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, PREFIX), result_type=EnrollResult,
        search_attributes=sa_pairs(inp.provider, inp.instance_key) if as_the_api else None,
    )
    answer, result = await asyncio.gather(
        handle.execute_update(UpdateName.REGISTER, result_type=RegistrationAnswer), handle.result()
    )
    assert isinstance(answer, RegistrationAnswer) and isinstance(result, EnrollResult)
    return handle


async def enroll_into_existing_account(client: Client, fake: FakeClouds, out: Path) -> list[str]:
    """A second VM of the same project: its systems account and SSM configuration exist (the
    short path). It leaves the fakes as it found them, for the scenarios after it."""
    second = Vm(provider=Provider.GCP, cloud_account=GCP_PROJECT, instance_id="1003",
                labels={"rackspace-addon-patching": "true"})
    # A third, started as the API starts it: the start carries its first state (no first upsert).
    third = Vm(provider=Provider.GCP, cloud_account=GCP_PROJECT, instance_id="1004",
               labels={"rackspace-addon-patching": "true"})
    fake.vms.update({second.instance_id: second, third.instance_id: third})
    try:
        written = await save(client, await enroll(client, second), "enroll_gcp_existing_account", out)
        return written + await save(client, await enroll(client, third, as_the_api=True), "enroll_gcp_api_start", out)
    finally:
        for vm in (second, third):
            del fake.vms[vm.instance_id]
            fake.managed.pop(f"{GCP_PROJECT}/{vm.instance_id}", None)


async def run(client: Client, workflow: str, arg: object, workflow_id: str, result_type: type) -> WorkflowHandle:
    handle = await client.start_workflow(
        workflow, arg, id=workflow_id, task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, PREFIX),
        result_type=result_type,
    )
    await handle.result()
    return handle


async def reconcile(client: Client, fake: FakeClouds, gcp: Vm) -> WorkflowHandle:
    """A GCP account whose enrolled VM changed ring, with a stale managed instance of a deleted VM
    and a labelled VM that never enrolled: retag, deregister, report."""
    fake.vms["1002"] = Vm(provider=Provider.GCP, cloud_account=GCP_PROJECT, instance_id="1002")
    gcp.labels["rackspace-addon-patching-patchgroup"] = "late"
    fake.managed[f"{GCP_PROJECT}/1001"] = ManagedInstance(
        instance_id="mi-0000000000000001", ping_status="Online", tags={"Patch Group": "early"})
    fake.managed[f"{GCP_PROJECT}/999"] = ManagedInstance(instance_id="mi-0000000000000999", ping_status="ConnectionLost", tags={})
    inp = ReconcileInput(provider=Provider.GCP, cloud_account=GCP_PROJECT, queue_prefix=PREFIX)
    return await run(client, WorkflowName.RECONCILE, inp, ids.reconcile_schedule(Provider.GCP, GCP_PROJECT), ReconcileResult)


@activity.defn(name=ActivityName.ENSURE_VCENTER_TOKENS)
async def ensure_vcenter_tokens(inp: VcenterTokensInput) -> VcenterTokensResult:
    return VcenterTokensResult(issued=["DC0_H0_VM0 (5029c4a8-4b2e-4cd3-9bd0-6e1a55a3c9a1)"], kept=1)


async def vcenter_tokens(client: Client) -> WorkflowHandle:
    """A vCenter's token schedule run (after the doctor: only then does a vmware worker answer)."""
    queue = taskqueues.for_role(WorkerRole.VMWARE, PREFIX)
    async with Worker(client, task_queue=queue, activities=[ensure_vcenter_tokens], interceptors=[ErrorMappingInterceptor()]):
        inp = VcenterTokensInput(vcenter_id="vc-recorded", customer="acme", queue_prefix=PREFIX)
        return await run(client, WorkflowName.VCENTER_TOKENS, inp, ids.vcenter_tokens_schedule("vc-recorded"), VcenterTokensResult)


async def record(env: WorkflowEnvironment, out: Path) -> list[str]:
    client = env.client
    fake = FakeClouds(account_base=210987654321)
    gcp = Vm(provider=Provider.GCP, cloud_account=GCP_PROJECT, instance_id="1001",
             labels={"rackspace-addon-patching": "true", "rackspace-addon-patching-patchgroup": "early"})
    ec2 = Vm(provider=Provider.AWS, cloud_account=AWS_ACCOUNT, instance_id="i-0abc")
    fake.vms = {gcp.instance_id: gcp, ec2.instance_id: ec2}
    written: list[str] = []
    async with workers(client, fake):
        link = TenantLink(provider=Provider.GCP, cloud_account=GCP_PROJECT, customer="acme")
        put = await run(client, WorkflowName.LINK_ADMIN, LinkCommand(action="put", link=link, queue_prefix=PREFIX),
                        "links/put", LinkCommandResult)
        written += await save(client, put, "link_put", out)
        fake.link(Provider.AWS, AWS_ACCOUNT, role_arn=f"arn:aws:iam::{AWS_ACCOUNT}:role/fleetpatch")
        listed = await run(client, WorkflowName.LINK_ADMIN, LinkCommand(action="list", queue_prefix=PREFIX),
                           "links/list", LinkCommandResult)
        written += await save(client, listed, "link_list", out)
        written += await save(client, await enroll(client, gcp), "enroll_gcp", out)
        written += await enroll_into_existing_account(client, fake, out)
        written += await save(client, await enroll(client, ec2), "enroll_ec2", out)
        for name, vm in (("reenroll_gcp", gcp), ("reenroll_ec2", ec2)):
            inp = ReenrollInput(provider=vm.provider, instance_key=f"{vm.cloud_account}/{vm.instance_id}", queue_prefix=PREFIX)
            written += await save(client, await run(client, WorkflowName.ALLOW_REENROLLMENT, inp, f"reenroll/{name}",
                                                    ReenrollResult), name, out)
        written += await save(client, await reconcile(client, fake, gcp), "reconcile_gcp", out)
        removed = LinkCommand(action="delete", key=LinkKey(provider=Provider.GCP, cloud_account=GCP_PROJECT),
                              queue_prefix=PREFIX)
        written += await save(client, await run(client, WorkflowName.LINK_ADMIN, removed, "links/delete",
                                                LinkCommandResult), "link_delete", out)
        # Every role answers but vmware and azure, which have no worker here: "no answer" after the budget.
        doctor = DoctorInput(roles=list(WorkerRole), queue_prefix=PREFIX, timeout_seconds=5)
        written += await save(client, await run(client, WorkflowName.DOCTOR, doctor, "doctor", DoctorResult), "doctor", out)
        written += await save(client, await vcenter_tokens(client), "vcenter_tokens", out)
    return written


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(temporal_test_server()))
    await register_search_attributes(env.client)
    HERE.mkdir(exist_ok=True)
    try:
        for name in await record(env, HERE):
            print(name)
        await record_histories.record(env, HERE)
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())

"""EnrollVm against scripted clouds on the time-skipping server: order, refusals, slow paths."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.temporal_ops import TemporalActivities
from clients.api.routes.registration import sa_pairs
from contracts import search_attributes as sa
from contracts import ids, taskqueues
from contracts.enrollment import (
    EnrollInput,
    EnrollmentState,
    ManagedInstance,
    EnrollmentPolicy,
    EnrollmentStatus,
    EnrollmentStatusQuery,
    EnrollResult,
    RegisterRequest,
    RegistrationAnswer,
)
from contracts.errors import ErrorType
from contracts.providers import OsFamily, PatchGroup, Provider, WorkerRole
from tests.unit.enrollment.fakes import FakeClouds, Vm
from workers.interceptors import ErrorMappingInterceptor
from workflows.registry import ALL_WORKFLOWS


@asynccontextmanager
async def workers(client: Client, prefix: str, fake: FakeClouds) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        specs = [
            (WorkerRole.ORCHESTRATOR, TemporalActivities(client).all(), list(ALL_WORKFLOWS)),
            (WorkerRole.AWS, [*fake.aws_activities(), fake.deregister_managed_instance], []),
            (WorkerRole.GCP, fake.provider_activities(), []),
            (WorkerRole.EC2, fake.provider_activities(), []),
        ]
        for role, acts, wfs in specs:
            worker = Worker(
                client, task_queue=taskqueues.for_role(role, prefix), activities=acts, workflows=wfs,
                interceptors=[ErrorMappingInterceptor()],
            )
            await stack.enter_async_context(worker)
        yield


def _input(vm: Vm, prefix: str, token: str, **policy) -> EnrollInput:
    return EnrollInput(
        provider=vm.provider,
        instance_key=f"{vm.cloud_account}/{vm.instance_id}",
        identity={"token": token},
        hostname=f"host-{vm.instance_id}",
        os=OsFamily.UBUNTU,
        os_version="22.04",
        secret_digest=hashlib.sha256(b"s").hexdigest(),
        policy=EnrollmentPolicy(**policy),
        queue_prefix=prefix,
    )


async def _enroll(client: Client, inp: EnrollInput) -> tuple[RegistrationAnswer | BaseException, object]:
    handle = await client.start_workflow(
        "EnrollVm", inp, id=ids.enrollment(inp.provider, inp.instance_key) + uuid.uuid4().hex[:6],
        task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, inp.queue_prefix),
        result_type=EnrollResult,
    )

    async def answer() -> RegistrationAnswer | BaseException:
        try:
            return await handle.execute_update("register", result_type=RegistrationAnswer)
        except WorkflowUpdateFailedError as err:
            return err.cause

    async def result() -> object:
        # Waiting on the result is what lets the time-skipping server skip the backoffs.
        try:
            return await handle.result()
        except WorkflowFailureError as err:
            return err.cause

    return tuple(await asyncio.gather(answer(), result()))  # type: ignore[return-value]


def _gcp_vm(project: str, n: int = 1, **kw) -> Vm:
    return Vm(provider=Provider.GCP, cloud_account=project, instance_id=str(1000 + n), **kw)


@pytest.fixture
def project(queue_prefix: str) -> str:
    """A cloud account of this test alone: shared workflows (systems accounts) are keyed by it."""
    return "proj-" + queue_prefix.strip("-")


async def test_enrolls_a_gcp_vm_end_to_end(time_skipping_env: WorkflowEnvironment, queue_prefix: str, project: str) -> None:
    fake = FakeClouds()
    vm = _gcp_vm(project, labels={"rackspace-addon-patching": "true", "rackspace-addon-patching-patchgroup": "early"})
    fake.vms["tok"] = vm
    fake.link(Provider.GCP, project, customer="acme")
    async with workers(time_skipping_env.client, queue_prefix, fake):
        answer, result = await _enroll(time_skipping_env.client, _input(vm, queue_prefix, "tok"))
    assert isinstance(answer, RegistrationAnswer)
    assert answer.activation is not None and answer.activation.code == "secret-code"
    assert answer.patch_group == "early"
    assert isinstance(result, EnrollResult)
    assert result.patch_group is PatchGroup.EARLY
    assert result.customer == "acme"
    assert result.managed_instance_id.startswith("mi-")
    assert result.systems_account == answer.systems_account
    request = fake.activations[answer.activation.id]
    assert request.tags["Patch Group"] == "early"
    assert request.tags["fleetpatch:instance-key"] == f"{project}/1001"
    assert fake.calls["create_account"] == 1 and fake.calls["ssm_config"] == 1
    assert fake.deleted_activations == [answer.activation.id]  # used up after registration


async def test_default_patch_group_comes_from_the_link(time_skipping_env: WorkflowEnvironment, queue_prefix: str, project: str) -> None:
    fake = FakeClouds()
    vm = _gcp_vm(project)
    fake.vms["tok"] = vm
    fake.link(Provider.GCP, project, default_patch_group=PatchGroup.LATE)
    async with workers(time_skipping_env.client, queue_prefix, fake):
        answer, result = await _enroll(time_skipping_env.client, _input(vm, queue_prefix, "tok"))
    assert isinstance(result, EnrollResult) and result.patch_group is PatchGroup.LATE


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("unlinked", ErrorType.TENANT_NOT_LINKED),
        ("label-false", ErrorType.PATCHING_NOT_ENABLED),
        ("bad-group", ErrorType.PATCH_GROUP_INVALID),
        ("forged", ErrorType.IDENTITY_SIGNATURE_INVALID),
        ("already", ErrorType.ALREADY_ENROLLED),
        ("other-key", ErrorType.IDENTITY_INSTANCE_MISMATCH),
    ],
)
async def test_refusals_leave_nothing_behind(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str, project: str, setup: str, expected: ErrorType
) -> None:
    fake = FakeClouds()
    vm = _gcp_vm(project)
    fake.vms["tok"] = vm
    if setup != "unlinked":
        fake.link(Provider.GCP, project)
    if setup == "label-false":
        vm.labels["rackspace-addon-patching"] = "false"
    if setup == "bad-group":
        vm.labels["rackspace-addon-patching-patchgroup"] = "sometime"
    if setup == "already":
        from contracts.enrollment import ManagedInstance

        fake.managed[f"{project}/1001"] = ManagedInstance(instance_id="mi-0000000000000000a", ping_status="Online", tags={})
    inp = _input(vm, queue_prefix, "forged" if setup == "forged" else "tok")
    if setup == "other-key":
        inp.instance_key = f"{project}/9999"
    async with workers(time_skipping_env.client, queue_prefix, fake):
        answer, result = await _enroll(time_skipping_env.client, inp)
    assert getattr(answer, "type", None) == expected.value, answer
    # A refusal completes the run with a refused result: FAILED is kept for what broke.
    assert isinstance(result, EnrollResult) and result.refused == expected.value, result
    assert result.reason
    assert fake.activations == {}
    if setup in ("unlinked", "label-false", "bad-group", "forged", "other-key"):
        assert fake.calls["create_account"] == 0


async def test_registering_again_while_running_gets_the_same_answer(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str, project: str
) -> None:
    """The VM lost its answer and registers again: the same activation, and its new enrollment id
    may poll; no 409."""
    fake = FakeClouds(agent_online_after_polls=None)
    vm = _gcp_vm(project)
    fake.vms["tok"] = vm
    fake.link(Provider.GCP, project)
    client = time_skipping_env.client
    inp = _input(vm, queue_prefix, "tok", agent_online_timeout_seconds=600)
    async with workers(client, queue_prefix, fake):
        handle = await client.start_workflow(
            "EnrollVm", inp, id=ids.enrollment(inp.provider, inp.instance_key) + uuid.uuid4().hex[:6],
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix), result_type=EnrollResult,
        )
        first = await handle.execute_update("register", RegisterRequest(inp.secret_digest), result_type=RegistrationAnswer)
        again = [
            await handle.execute_update("register", RegisterRequest(f"digest-{i}"), result_type=RegistrationAnswer)
            for i in range(3)
        ]
        status = await handle.query("status", EnrollmentStatusQuery("digest-2"), result_type=EnrollmentStatus)
        stranger = await handle.query("status", EnrollmentStatusQuery("digest-x"), result_type=EnrollmentStatus)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()  # the agent never came: a failure (FAILED), not a refusal
    assert getattr(failed.value.cause, "type", None) == ErrorType.AGENT_REGISTRATION_TIMEOUT.value
    assert first.activation is not None
    assert all(a == first for a in again)
    assert len(fake.activations) == 1  # still usable: checked, not replaced
    assert fake.calls["check_activation"] >= 1
    assert status.owner and status.answer == first
    assert not stranger.owner and stranger.answer is None


async def _reregister_with_a_spoiled_activation(
    env: WorkflowEnvironment, prefix: str, project: str, spoil: str
) -> tuple[FakeClouds, RegistrationAnswer, RegistrationAnswer, EnrollResult]:
    """A VM gets its activation, which it then cannot use ("gone": deleted behind fleetpatch's
    back; "used": something else registered with it), and registers again."""
    fake = FakeClouds(online_only_reissued=True)
    vm = _gcp_vm(project)
    fake.vms["tok"] = vm
    fake.link(Provider.GCP, project)
    client = env.client
    inp = _input(vm, prefix, "tok", agent_online_timeout_seconds=600)
    async with workers(client, prefix, fake):
        handle = await client.start_workflow(
            "EnrollVm", inp, id=ids.enrollment(inp.provider, inp.instance_key) + uuid.uuid4().hex[:6],
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, prefix), result_type=EnrollResult,
        )
        first = await handle.execute_update("register", RegisterRequest(inp.secret_digest), result_type=RegistrationAnswer)
        assert first.activation is not None
        fake.spoiled[first.activation.id] = spoil
        if spoil == "used":  # an impostor registered with the code: a managed instance of its own
            fake.managed[inp.instance_key] = ManagedInstance(
                instance_id="mi-0000000000impostor", ping_status="ConnectionLost", tags={}, activation_id=first.activation.id
            )
        again = await handle.execute_update("register", RegisterRequest("digest-again"), result_type=RegistrationAnswer)
        result = await handle.result()
    return fake, first, again, result


@pytest.mark.parametrize("spoil", ["gone", "used"])
async def test_registering_again_with_a_used_or_gone_activation_gets_a_new_one(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str, project: str, spoil: str
) -> None:
    """Deliver 1: the running enrollment's activation, "or a new one if that one is used or gone":
    the old one is deleted, whatever used it deregistered, and the agent registers with the new one
    (one managed instance for the VM)."""
    fake, first, again, result = await _reregister_with_a_spoiled_activation(time_skipping_env, queue_prefix, project, spoil)
    assert first.activation is not None and again.activation is not None
    assert again.activation.id != first.activation.id and again.systems_account == first.systems_account
    assert fake.calls["create_activation"] == 2 and fake.calls["check_activation"] == 1
    assert fake.activations[again.activation.id].idempotency_key.endswith("/reissue-1")
    assert isinstance(result, EnrollResult)
    # Old one deleted when replaced; the new one once its agent registered: nothing left behind.
    assert fake.deleted_activations == [first.activation.id, again.activation.id]
    assert fake.deregistered == (["mi-0000000000impostor"] if spoil == "used" else [])
    assert [m.activation_id for m in fake.managed.values()] == [again.activation.id]
    assert result.managed_instance_id == next(iter(fake.managed.values())).instance_id


async def test_agent_timeout_deletes_the_activation(time_skipping_env: WorkflowEnvironment, queue_prefix: str, project: str) -> None:
    fake = FakeClouds(agent_online_after_polls=None)
    vm = _gcp_vm(project)
    fake.vms["tok"] = vm
    fake.link(Provider.GCP, project)
    async with workers(time_skipping_env.client, queue_prefix, fake):
        answer, result = await _enroll(
            time_skipping_env.client, _input(vm, queue_prefix, "tok", agent_online_timeout_seconds=600)
        )
    assert isinstance(answer, RegistrationAnswer) and answer.activation is not None
    assert getattr(result, "type", None) == ErrorType.AGENT_REGISTRATION_TIMEOUT.value
    assert fake.deleted_activations == [answer.activation.id]
    # An agent that stays away is polled less and less often, at most a minute apart: every poll
    # is an activity task the server dispatches (a flat 5 s poll asked 120 times in these 10 minutes).
    gaps = [(b - a).total_seconds() for a, b in zip(fake.poll_times, fake.poll_times[1:])]
    assert 4 <= gaps[0] <= 7  # a normal agent is seen as soon as before
    assert all(later >= earlier - 1 for earlier, later in zip(gaps, gaps[1:]))
    assert 55 <= max(gaps) <= 62
    assert 12 <= len(fake.poll_times) <= 17


async def test_concurrent_enrollments_share_one_systems_account(
    dev_env: WorkflowEnvironment, queue_prefix: str, project: str
) -> None:
    # Real time on a real dev server: five enrollments find one vending in progress and wait for it.
    fake = FakeClouds(create_delay_polls=1)
    vms = [_gcp_vm(project, n) for n in range(1, 6)]
    for n, vm in enumerate(vms):
        fake.vms[f"tok{n}"] = vm
    fake.link(Provider.GCP, project)
    async with workers(dev_env.client, queue_prefix, fake):
        outcomes = await asyncio.gather(
            *(_enroll(dev_env.client, _input(vm, queue_prefix, f"tok{n}")) for n, vm in enumerate(vms))
        )
    results = [r for _, r in outcomes]
    assert all(isinstance(r, EnrollResult) for r in results), results
    assert len({r.systems_account for r in results}) == 1
    assert fake.calls["create_account"] == 1
    assert fake.calls["ssm_config"] == 1
    assert len(fake.activations) == 5


async def test_email_already_exists_adopts_the_account(time_skipping_env: WorkflowEnvironment, queue_prefix: str, project: str) -> None:
    fake = FakeClouds(create_failure="EMAIL_ALREADY_EXISTS")
    vm = _gcp_vm(project)
    fake.vms["tok"] = vm
    fake.link(Provider.GCP, project)
    async with workers(time_skipping_env.client, queue_prefix, fake):
        _, result = await _enroll(time_skipping_env.client, _input(vm, queue_prefix, "tok"))
    assert isinstance(result, EnrollResult)
    assert result.systems_account == f"{fake.account_base + 999}"
    assert fake.calls["find_account"] == 2  # looked up, submitted, failed, looked up again


async def test_account_vending_failure_is_clear(time_skipping_env: WorkflowEnvironment, queue_prefix: str, project: str) -> None:
    fake = FakeClouds(create_failure="ACCOUNT_LIMIT_EXCEEDED")
    vm = _gcp_vm(project)
    fake.vms["tok"] = vm
    fake.link(Provider.GCP, project)
    async with workers(time_skipping_env.client, queue_prefix, fake):
        answer, result = await _enroll(time_skipping_env.client, _input(vm, queue_prefix, "tok"))
    assert getattr(result, "type", None) == ErrorType.ACCOUNT_VENDING_FAILED.value
    assert "ACCOUNT_LIMIT_EXCEEDED" in str(getattr(result, "message", ""))
    assert fake.activations == {}


async def test_missing_tags_are_added_and_confirmed(time_skipping_env: WorkflowEnvironment, queue_prefix: str, project: str) -> None:
    fake = FakeClouds(agent_tags_land=False)
    vm = _gcp_vm(project)
    fake.vms["tok"] = vm
    fake.link(Provider.GCP, project)
    async with workers(time_skipping_env.client, queue_prefix, fake):
        _, result = await _enroll(time_skipping_env.client, _input(vm, queue_prefix, "tok"))
    assert isinstance(result, EnrollResult)
    assert fake.calls["tag_managed"] == 1
    assert fake.managed[f"{project}/1001"].tags["Patch Group"] == "on-time"


async def test_ec2_is_tagged_not_activated(time_skipping_env: WorkflowEnvironment, queue_prefix: str, project: str) -> None:
    fake = FakeClouds()
    vm = Vm(provider=Provider.AWS, cloud_account="111122223333", instance_id="i-0abc")
    fake.vms["tok"] = vm
    fake.link(Provider.AWS, "111122223333", role_arn="arn:aws:iam::111122223333:role/fleetpatch")
    async with workers(time_skipping_env.client, queue_prefix, fake):
        answer, result = await _enroll(time_skipping_env.client, _input(vm, queue_prefix, "tok"))
    assert isinstance(answer, RegistrationAnswer)
    assert answer.activation is None and answer.managed_instance_id == "i-0abc"
    assert isinstance(result, EnrollResult) and result.systems_account == "111122223333"
    assert vm.labels["Patch Group"] == "on-time"
    assert fake.calls["create_account"] == 0 and fake.activations == {}


async def test_an_enrollment_into_an_existing_account_reads_its_setup_and_starts_no_child(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str, project: str
) -> None:
    """The short path: once the systems account and its SSM configuration completed, a second VM's
    enrollment reads their results (one local activity), starts no child and activates in one call;
    a VM already managed is refused by that call."""
    from temporalio.api.enums.v1 import EventType

    client = time_skipping_env.client
    fake = FakeClouds()
    first, second = _gcp_vm(project, 1), _gcp_vm(project, 2)
    fake.vms.update({"tok1": first, "tok2": second})
    fake.link(Provider.GCP, project)
    async with workers(client, queue_prefix, fake):
        answer1, _ = await _enroll(client, _input(first, queue_prefix, "tok1"))
        inp = _input(second, queue_prefix, "tok2")
        handle = await client.start_workflow(
            "EnrollVm", inp, id=ids.enrollment(inp.provider, inp.instance_key),
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix), result_type=EnrollResult,
            search_attributes=sa_pairs(inp.provider, inp.instance_key))  # as the API starts it
        answer2, result2 = await asyncio.gather(
            handle.execute_update("register", result_type=RegistrationAnswer), handle.result())
        again, refused = await _enroll(client, _input(second, queue_prefix, "tok2"))  # already managed
    assert isinstance(answer2, RegistrationAnswer) and answer2.systems_account == answer1.systems_account
    assert result2.managed_instance_id.startswith("mi-")
    assert fake.calls["create_account"] == 1 and fake.calls["ssm_config"] == 1
    events = (await handle.fetch_history()).events
    kinds = [e.event_type for e in events]
    assert EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED not in kinds
    local = [e.marker_recorded_event_attributes.marker_name for e in events if e.HasField("marker_recorded_event_attributes")]
    assert "core_local_activity" in local
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in events
                 if e.HasField("activity_task_scheduled_event_attributes")]
    assert "await_workflow" not in scheduled and "find_managed_instance" not in scheduled
    assert scheduled[:4] == ["verify_identity", "get_link", "read_vm_metadata", "activate_new_instance"]
    # Its start carried the provider, the instance key and the state: the first task upserts only
    # the SDK's patch version, and the run's later states still reach visibility.
    first_task = events[:kinds.index(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)]
    upserted = [sorted(e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
                for e in first_task if e.HasField("upsert_workflow_search_attributes_event_attributes")]
    assert upserted == [["TemporalChangeVersion"]]
    described = (await handle.describe()).typed_search_attributes
    assert described.get(sa.ENROLLMENT_STATE) == EnrollmentState.ENROLLED.value
    assert described.get(sa.INSTANCE_KEY) == inp.instance_key and described.get(sa.PROVIDER) == "gcp"
    assert getattr(again, "type", None) == ErrorType.ALREADY_ENROLLED.value
    assert getattr(refused, "refused", None) == ErrorType.ALREADY_ENROLLED.value

"""vCenter tokens in the workflows (time-skipping server, scripted clouds): the token schedule's run
issues for the link's customer and scope only; EnrollVm refuses a token of another customer and
retires the token that enrolled its VM."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.temporal_ops import TemporalActivities
from contracts import ids, taskqueues
from contracts.enrollment import EnrollResult, RegistrationAnswer
from contracts.errors import ErrorType, IdentityRefused
from contracts.identity import VerifiedIdentity
from contracts.models import (
    ActivityName,
    IssueTokensInput,
    IssueTokensResult,
    RetireTokenInput,
    VcenterTokensInput,
    VerifyIdentityInput,
)
from contracts.names import WorkflowName
from contracts.providers import Provider, WorkerRole
from tests.unit.enrollment.fakes import FakeClouds, Vm
from tests.unit.enrollment.test_enroll_workflow import _enroll, _input
from workers.interceptors import ErrorMappingInterceptor
from workflows.registry import ALL_WORKFLOWS

UUID = "50211111-2222-4333-8444-555566667777"


class VcenterFakes(FakeClouds):
    """FakeClouds with a vCenter: tokens carry a customer and an id; issue and retire are recorded."""

    token_customer: str = "acme"
    issued: list[IssueTokensInput]
    retired: list[RetireTokenInput]

    @activity.defn(name=ActivityName.VERIFY_IDENTITY)
    async def verify_identity(self, inp: VerifyIdentityInput) -> VerifiedIdentity:
        vm = self.vms.get(inp.identity.get("token", ""))
        if vm is None or not inp.vcenter_public_keys:
            raise IdentityRefused(ErrorType.IDENTITY_SIGNATURE_INVALID, "signature does not verify")
        self.scopes.append(inp.vcenter_scope)
        return VerifiedIdentity(
            provider=vm.provider, cloud_account=vm.cloud_account, instance_id=vm.instance_id,
            issued_at=datetime(2026, 11, 26, tzinfo=UTC), instance_name="vm",
            evidence={"jti": "jti-1", "customer": self.token_customer},
        )

    @activity.defn(name=ActivityName.ISSUE_VCENTER_TOKENS)
    async def issue_vcenter_tokens(self, inp: IssueTokensInput) -> IssueTokensResult:
        self.issued.append(inp)
        return IssueTokensResult(issued=[UUID])

    @activity.defn(name=ActivityName.RETIRE_VCENTER_TOKEN)
    async def retire_vcenter_token(self, inp: RetireTokenInput) -> bool:
        self.retired.append(inp)
        return True


def _fakes() -> VcenterFakes:
    fake = VcenterFakes()
    fake.issued, fake.retired, fake.scopes = [], [], []
    return fake


@asynccontextmanager
async def workers(client: Client, prefix: str, fake: VcenterFakes) -> AsyncIterator[None]:
    specs = [
        (WorkerRole.ORCHESTRATOR, [TemporalActivities(client).await_workflow], list(ALL_WORKFLOWS)),
        (WorkerRole.AWS, fake.aws_activities(), []),
        (WorkerRole.VMWARE, [*fake.provider_activities(), fake.issue_vcenter_tokens, fake.retire_vcenter_token], []),
    ]
    async with AsyncExitStack() as stack:
        for role, acts, wfs in specs:
            await stack.enter_async_context(Worker(
                client, task_queue=taskqueues.for_role(role, prefix), activities=acts, workflows=wfs,
                interceptors=[ErrorMappingInterceptor()],
            ))
        yield


async def _tokens_run(client: Client, prefix: str, vcenter: str) -> IssueTokensResult:
    return await client.execute_workflow(
        WorkflowName.VCENTER_TOKENS, VcenterTokensInput(vcenter_id=vcenter, patching_label="patch-me", queue_prefix=prefix),
        id=f"{ids.vcenter_tokens_schedule(vcenter)}/{uuid.uuid4().hex[:6]}",
        task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, prefix), result_type=IssueTokensResult,
    )


async def test_the_token_run_issues_for_the_links_customer_and_scope(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    fake = _fakes()
    fake.link(Provider.VMWARE, "vc-shared", customer="umbrella", vcenter_public_keys=["PEM"], vcenter_scope="DC0/vm/umbrella")
    async with workers(time_skipping_env.client, queue_prefix, fake):
        result = await _tokens_run(time_skipping_env.client, queue_prefix, "vc-shared")
        unlinked = await _tokens_run(time_skipping_env.client, queue_prefix, "vc-unlinked")
    assert result.linked and result.issued == [UUID]
    assert [(i.vcenter_id, i.customer, i.scope, i.public_keys, i.patching_label, i.force) for i in fake.issued] == [
        ("vc-shared", "umbrella", "DC0/vm/umbrella", ["PEM"], "patch-me", False)
    ]
    assert not unlinked.linked and unlinked.issued == []  # nothing issued for a vCenter that is not linked


def _vcenter_vm(vcenter: str) -> Vm:
    return Vm(provider=Provider.VMWARE, cloud_account=vcenter, instance_id=UUID)


async def test_an_enrollment_retires_the_token_that_enrolled(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    fake = _fakes()
    vcenter = "vc-" + queue_prefix.strip("-")
    vm = _vcenter_vm(vcenter)
    fake.vms["tok"] = vm
    fake.link(Provider.VMWARE, vcenter, customer="acme", vcenter_public_keys=["PEM"], vcenter_scope="DC0/vm/acme")
    async with workers(time_skipping_env.client, queue_prefix, fake):
        answer, result = await _enroll(time_skipping_env.client, _input(vm, queue_prefix, "tok"))
    assert isinstance(answer, RegistrationAnswer) and isinstance(result, EnrollResult), (answer, result)
    assert fake.scopes == ["DC0/vm/acme"]  # verification checks the VM is inside the link's folder
    assert [(r.vcenter_id, r.instance_uuid, r.jti, r.customer) for r in fake.retired] == [(vcenter, UUID, "jti-1", "acme")]


async def test_a_token_of_another_customer_is_refused(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    fake = _fakes()
    fake.token_customer = "umbrella"
    vcenter = "vc-" + queue_prefix.strip("-")
    vm = _vcenter_vm(vcenter)
    fake.vms["tok"] = vm
    fake.link(Provider.VMWARE, vcenter, customer="acme", vcenter_public_keys=["PEM"])
    async with workers(time_skipping_env.client, queue_prefix, fake):
        answer, result = await _enroll(time_skipping_env.client, _input(vm, queue_prefix, "tok"))
    assert getattr(answer, "type", None) == ErrorType.IDENTITY_CUSTOMER_MISMATCH.value, answer
    assert fake.calls["create_account"] == 0 and fake.retired == []

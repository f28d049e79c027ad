"""EnrollVm prepares the systems account for Session Manager when the link allows remote access,
and leaves it alone otherwise (time-skipping server, scripted clouds)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
from temporalio import activity
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.temporal_ops import TemporalActivities
from contracts import taskqueues
from contracts.enrollment import AccountRef, EnrollResult, LinkCommand, LinkCommandResult, TenantLink
from contracts.models import ActivityName, RemoteAccessInput, RemoteAccessResult
from contracts.names import WorkflowName
from contracts.providers import Provider, WorkerRole
from tests.unit.enrollment.fakes import FakeClouds, Vm
from tests.unit.enrollment.test_enroll_workflow import _enroll, _input
from workers.interceptors import ErrorMappingInterceptor
from workflows.registry import ALL_WORKFLOWS


class RemoteAccessFake:
    def __init__(self) -> None:
        self.enabled: list[RemoteAccessInput] = []

    @activity.defn(name=ActivityName.ENABLE_REMOTE_ACCESS)
    async def enable_remote_access(self, inp: RemoteAccessInput) -> RemoteAccessResult:
        self.enabled.append(inp)
        return RemoteAccessResult(activation_tier="advanced", log_bucket="b", preferences_version="1", changed=[])


class Links:
    @activity.defn(name=ActivityName.PUT_LINK)
    async def put_link(self, link: TenantLink) -> None:
        return None


@asynccontextmanager
async def workers(client: Client, prefix: str, fake: FakeClouds, remote: RemoteAccessFake) -> AsyncIterator[None]:
    specs = [
        (WorkerRole.ORCHESTRATOR, TemporalActivities(client).all(), list(ALL_WORKFLOWS)),
        (WorkerRole.AWS, [*fake.aws_activities(), remote.enable_remote_access], []),
        (WorkerRole.GCP, fake.provider_activities(), []),
    ]
    async with AsyncExitStack() as stack:
        for role, acts, wfs in specs:
            await stack.enter_async_context(Worker(
                client, task_queue=taskqueues.for_role(role, prefix), activities=acts, workflows=wfs,
                interceptors=[ErrorMappingInterceptor()],
            ))
        yield


@pytest.mark.parametrize("remote_access", [True, False])
async def test_remote_access_follows_the_link(time_skipping_env: WorkflowEnvironment, queue_prefix: str, remote_access: bool) -> None:
    project = "proj-" + queue_prefix.strip("-")
    fake, remote = FakeClouds(), RemoteAccessFake()
    vm = Vm(provider=Provider.GCP, cloud_account=project, instance_id="1001")
    fake.vms["tok"] = vm
    fake.link(Provider.GCP, project, customer="acme", remote_access=remote_access)
    async with workers(time_skipping_env.client, queue_prefix, fake, remote):
        _, result = await _enroll(time_skipping_env.client, _input(vm, queue_prefix, "tok"))
    assert isinstance(result, EnrollResult), result
    if remote_access:
        assert [r.account.account_id for r in remote.enabled] == [result.systems_account]
    else:
        assert remote.enabled == []


async def test_a_link_that_allows_remote_access_prepares_its_vended_account(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str
) -> None:
    remote, account = RemoteAccessFake(), AccountRef(account_id="210987654321", role_arn="arn:aws:iam::210987654321:role/x")
    client = time_skipping_env.client
    async with Worker(client, task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix), workflows=list(ALL_WORKFLOWS)), \
            Worker(client, task_queue=taskqueues.for_role(WorkerRole.AWS, queue_prefix),
                   activities=[Links().put_link, remote.enable_remote_access]):
        for allowed, vended in ((True, account), (True, None), (False, account)):
            link = TenantLink(provider=Provider.GCP, cloud_account="acme-prod-1", customer="acme", remote_access=allowed)
            await client.execute_workflow(
                WorkflowName.LINK_ADMIN, LinkCommand(action="put", link=link, queue_prefix=queue_prefix, account=vended),
                id=f"links/{queue_prefix}{allowed}{vended is None}", result_type=LinkCommandResult,
                task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix),
            )
    assert [r.account for r in remote.enabled] == [account]  # only with remote access and a vended account

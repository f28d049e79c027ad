"""Issue 14, done when: on the local clouds, a customer with a GCP project and an Azure
subscription (each linked, each with its vended systems account), early VMs only in GCP, on-time
VMs in both. The real PatchWindow workflow on a Temporal dev server, the real aws-worker
activities against the local AWS, simulated agents running AWS-RunPatchBaseline against the
local approval engine.

- the Azure on-time run installs exactly the GCP early train (copied into Azure's bucket);
- an on-time RHEL VM with no early RHEL anywhere installs what its on-time baseline approves;
- a failing GCP early run holds both on-time rings.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.compliance import ComplianceActivities
from activities.patching import PatchingActivities
from clouds.aws.baselines import BaselineSpec
from clouds.aws.links import LinkStore
from clouds.aws.organizations import Organizations
from clouds.aws.patch_train import PatchTrainStore, parse_override_list
from clouds.aws.ssm_config import SsmConfigurator
from config.settings import AwsSettings, PatchingSettings
from contracts import taskqueues
from estate import db
from contracts.enrollment import SSM_CONFIGURATION_VERSION, AccountRef, TenantLink
from contracts.patch_config import window_config
from contracts.patching import PatchWindowInput, WindowOutcome, WindowStatus, WindowSummary
from contracts.providers import OsFamily, PatchGroup, Provider, WorkerRole
from localclouds.aws import REGION
from localclouds.aws.agent_client import AgentClient
from localclouds.fleet import catalogue, patching
from localclouds.fleet.agent import Agent, AgentSettings, AgentVm, wait_online
from localclouds.fleet.override import parse
from localclouds.fleet.platforms import PLATFORMS
from tests.unit.patching.test_customer_train_store import _vend
from workers.interceptors import ErrorMappingInterceptor
from workflows.patch_batch import PatchBatchWorkflow
from workflows.patch_window import PatchWindowWorkflow


@dataclass
class Vm:
    agent: Agent
    os: OsFamily
    instance_id: str
    before: catalogue.Installed

    def installed_now(self) -> set[tuple[str, str]]:
        """(package, version) the VM gained since it booted."""
        now, was = self.agent.vm.software.packages, self.before.packages
        return {(p, v) for p, v in now.items() if was.get(p) != v}


@dataclass
class Estate:
    customer: str
    gcp: AccountRef
    azure: AccountRef
    settings: AwsSettings


async def _estate(local_aws: Any, sessions: Any) -> Estate:
    tag = secrets.token_hex(4)
    settings = AwsSettings(endpoint_url=local_aws.endpoint, links_parameter_prefix=f"/fleetpatch-{tag}/links",
                           account_name_prefix=f"fp{tag}")
    customer, project, subscription = f"acme-{tag}", f"acme-prod-{tag}", f"00000000-0000-0000-0000-{tag}0000"
    org, links = Organizations(sessions), LinkStore(sessions, settings.links_parameter_prefix)
    gcp_id = await asyncio.to_thread(_vend, org, settings, Provider.GCP, project, sessions)
    azure_id = await asyncio.to_thread(_vend, org, settings, Provider.AZURE, subscription, sessions)
    links.put(TenantLink(Provider.GCP, project, customer))
    links.put(TenantLink(Provider.AZURE, subscription, customer))
    gcp, azure = (AccountRef(a, sessions.role_arn_for(a), region=REGION) for a in (gcp_id, azure_id))
    configurator = SsmConfigurator(sessions)
    for account in (gcp, azure):
        await asyncio.to_thread(configurator.apply, account, SSM_CONFIGURATION_VERSION)
    return Estate(customer, gcp, azure, settings)


@asynccontextmanager
async def _fleet(local_aws: Any) -> AsyncIterator[Any]:
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="agents") as pool:

        async def boot(account: AccountRef, os: OsFamily, group: PatchGroup, failure_rate: float = 0.0,
                       name: str | None = None) -> Vm:
            ssm = local_aws.client("ssm", local_aws.assume(account.account_id))
            activation = await asyncio.to_thread(
                ssm.create_activation, IamRole="fleetpatch-ssm-managed-instance",
                Tags=[{"Key": "Patch Group", "Value": group.value}])
            now = datetime.now(UTC)
            name = name or f"vm-{uuid.uuid4().hex[:8]}"
            software = catalogue.initial_software(catalogue.build(os, now), name, now)
            vm = AgentVm(name, PLATFORMS[os], software, save=lambda: None, command_duration=0.05,
                         failure_rate=failure_rate)
            vm.registration = await asyncio.to_thread(
                AgentClient(local_aws.endpoint, REGION).register, activation["ActivationId"], activation["ActivationCode"])
            agent = Agent(vm, AgentSettings(local_aws.endpoint, REGION, poll_interval=0.1), pool)
            tasks.append(asyncio.create_task(agent.run(stop)))
            assert await wait_online(agent, 15), agent.last_error
            return Vm(agent, os, vm.registration.instance_id, copy.deepcopy(software))

        try:
            yield boot
        finally:
            stop.set()
            await asyncio.gather(*tasks)


@asynccontextmanager
async def _workers(client: Client, prefix: str, estate: Estate, sessions: Any, state: Path) -> AsyncIterator[None]:
    """The orchestrator and the aws worker's patching activities and window-results writer (into
    an estate store of this test)."""
    url = f"sqlite:///{state / 'estate.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    results = ComplianceActivities(estate.settings, db.sessions(engine), sessions)
    activities = PatchingActivities(estate.settings, PatchingSettings(), sessions=sessions).all()
    activities.append(results.record_window_results)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(Worker(
            client, task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, prefix),
            workflows=[PatchWindowWorkflow, PatchBatchWorkflow], interceptors=[ErrorMappingInterceptor()]))
        await stack.enter_async_context(Worker(
            client, task_queue=taskqueues.for_role(WorkerRole.AWS, prefix), activities=activities,
            activity_executor=ThreadPoolExecutor(max_workers=4), interceptors=[ErrorMappingInterceptor()]))
        yield
    engine.dispose()


async def _start(client: Client, prefix: str, estate: Estate, account: AccountRef, group: PatchGroup) -> WorkflowHandle:
    inp = PatchWindowInput(account=account, group=group, customer=estate.customer, config=window_config(group),
                           queue_prefix=prefix, poll_interval_seconds=1, poll_hold_seconds=2)
    return await client.start_workflow(
        PatchWindowWorkflow.run, inp, id=f"patch-window/{account.account_id}/{group.value}-{uuid.uuid4().hex[:8]}",
        task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, prefix), result_type=WindowSummary)


def _with_every_package(os: OsFamily) -> str:
    """A VM name whose software (seeded by the name) has every package of the OS's catalogue, the
    optional ones too: an early VM that trains them all. (A random name leaves out each optional
    package half the time; an on-time VM that has one then keeps its patch missing, since the
    train holds exactly what the early ring installed.)"""
    now = datetime.now(UTC)
    cat = catalogue.build(os, now)
    while True:
        name = f"vm-{uuid.uuid4().hex[:8]}"
        if set(catalogue.initial_software(cat, name, now).packages) == set(cat.packages):
            return name


def _titles(vm: Vm) -> set[str]:
    cat = catalogue.build(vm.os, datetime.now(UTC))
    found = {(p.package, p.full_version): p.title for p in cat.patches}
    return {found[key] for key in vm.installed_now()}


async def test_the_azure_on_time_ring_installs_the_gcp_early_train_and_rhel_follows_its_baseline(
    dev_env: WorkflowEnvironment, queue_prefix: str, local_aws: Any, sessions: Any, tmp_path: Path
) -> None:
    client = dev_env.client
    estate = await _estate(local_aws, sessions)
    async with _fleet(local_aws) as boot, _workers(client, queue_prefix, estate, sessions, tmp_path):
        gcp_early = await boot(estate.gcp, OsFamily.UBUNTU, PatchGroup.EARLY)
        azure_ubuntu = await boot(estate.azure, OsFamily.UBUNTU, PatchGroup.ON_TIME)
        azure_rhel = await boot(estate.azure, OsFamily.RHEL, PatchGroup.ON_TIME)
        gcp_on_time = await boot(estate.gcp, OsFamily.UBUNTU, PatchGroup.ON_TIME)
        early = await (await _start(client, queue_prefix, estate, estate.gcp, PatchGroup.EARLY)).result()
        none = await (await _start(client, queue_prefix, estate, estate.azure, PatchGroup.EARLY)).result()
        rhel_expected = {p.title for p in patching.install_targets(
            catalogue.build(OsFamily.RHEL, datetime.now(UTC)), copy.deepcopy(azure_rhel.before),
            BaselineSpec(OsFamily.RHEL, PatchGroup.ON_TIME).request(), datetime.now(UTC), None)}
        azure = await (await _start(client, queue_prefix, estate, estate.azure, PatchGroup.ON_TIME)).result()
        gcp = await (await _start(client, queue_prefix, estate, estate.gcp, PatchGroup.ON_TIME)).result()

    assert early.outcome is WindowOutcome.SUCCEEDED and none.outcome is WindowOutcome.NO_TARGETS
    assert early.train.get("ubuntu", 0) > 0
    store = PatchTrainStore(sessions, PatchingSettings().bucket)
    gcp_train = store.read_train(estate.gcp, early.train_id or "")
    assert gcp_train is not None and gcp_train.per_os["ubuntu"].url
    train = {p.title for p in parse_override_list(store.read_object(estate.gcp, gcp_train.per_os["ubuntu"].url) or b"")}
    assert _titles(gcp_early) == train  # the train is exactly what the early VM installed

    assert azure.outcome is WindowOutcome.SUCCEEDED, azure.notes
    assert azure.train_id == gcp.train_id == early.train_id
    copied = store.read_train(estate.azure, early.train_id or "")
    assert copied is not None and copied.per_os["ubuntu"].url.startswith(f"s3://fleetpatch-patching-{estate.azure.account_id}-")
    # The Azure on-time Ubuntu VM installed exactly what the train (read from Azure's own bucket)
    # holds that it lacked: every such patch, and nothing else.
    listed = parse(store.read_object(estate.azure, copied.per_os["ubuntu"].url) or b"")
    lacked = {p.title for p in patching.install_targets(
        catalogue.build(OsFamily.UBUNTU, datetime.now(UTC)), copy.deepcopy(azure_ubuntu.before),
        BaselineSpec(OsFamily.UBUNTU, PatchGroup.ON_TIME).request(), datetime.now(UTC), listed)}
    assert _titles(azure_ubuntu) == lacked and lacked and lacked <= train
    assert _titles(gcp_on_time) <= train
    # RHEL had no early VM anywhere: what its on-time baseline (7 days) approves, not the newest.
    assert _titles(azure_rhel) == rhel_expected and rhel_expected
    assert any("rhel" in note and "baseline approves" in note for note in azure.notes)


async def test_a_failing_gcp_early_run_holds_both_on_time_rings(
    dev_env: WorkflowEnvironment, queue_prefix: str, local_aws: Any, sessions: Any, tmp_path: Path
) -> None:
    client = dev_env.client
    estate = await _estate(local_aws, sessions)
    async with _fleet(local_aws) as boot, _workers(client, queue_prefix, estate, sessions, tmp_path):
        await boot(estate.gcp, OsFamily.UBUNTU, PatchGroup.EARLY, failure_rate=1.0)
        await boot(estate.gcp, OsFamily.UBUNTU, PatchGroup.EARLY)
        on_time = [await boot(a, OsFamily.UBUNTU, PatchGroup.ON_TIME) for a in (estate.gcp, estate.azure)]
        early = await (await _start(client, queue_prefix, estate, estate.gcp, PatchGroup.EARLY)).result()
        handles = [await _start(client, queue_prefix, estate, a, PatchGroup.ON_TIME) for a in (estate.gcp, estate.azure)]
        statuses = [await _held(h) for h in handles]
        for handle in handles:
            await handle.terminate("test over")
    assert early.success_rate is not None and early.success_rate < 0.95
    for status in statuses:
        assert status.outcome is WindowOutcome.HELD
        reason = status.held_reason or ""
        assert f"the early ring of {estate.customer} succeeded on {early.success_rate:.1%} of 2 instances" in reason
        assert "below the 95% threshold" in reason
        assert f"gcp/acme-prod-" in reason and f"({early.workflow_id})" in reason and "azure/" in reason
    assert all(not vm.installed_now() for vm in on_time)


async def _held(handle: WorkflowHandle) -> WindowStatus:
    status = None
    for _ in range(300):
        try:
            status = await handle.query(PatchWindowWorkflow.status)
            if status.outcome is WindowOutcome.HELD:
                return status
        except Exception:  # not started yet
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"never held: {status}")


async def test_windows_trigger_wait_json_reports_the_customer_train_on_a_simulated_fleet(
    dev_env: WorkflowEnvironment, queue_prefix: str, local_aws: Any, sessions: Any, monkeypatch: Any, tmp_path: Path
) -> None:
    """``fleetpatch windows trigger --account A --group on-time --wait --json``: the train holds
    every OS the customer's early runs installed, in any of its accounts."""
    import json

    from typer.testing import CliRunner

    import scheduling
    from clients.cli.windows_cmd import app as windows_app
    from contracts.patching import EnsureWindowsInput

    client = dev_env.client
    estate = await _estate(local_aws, sessions)
    for account in (estate.gcp, estate.azure):
        await scheduling.ensure_window_schedules(client, EnsureWindowsInput(
            account=account, customer=estate.customer, time_zone="Asia/Tokyo", queue_prefix=queue_prefix),
            scheduling.RunShape(poll_interval_seconds=1, poll_hold_seconds=2))
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", client.namespace)
    async with _fleet(local_aws) as boot, _workers(client, queue_prefix, estate, sessions, tmp_path):
        await boot(estate.gcp, OsFamily.UBUNTU, PatchGroup.EARLY)
        await boot(estate.azure, OsFamily.RHEL, PatchGroup.EARLY, name=_with_every_package(OsFamily.RHEL))
        await boot(estate.gcp, OsFamily.RHEL, PatchGroup.ON_TIME)
        for account in (estate.gcp, estate.azure):
            early = await scheduling.wait(client, await scheduling.trigger(client, account.account_id, PatchGroup.EARLY))
            assert early.outcome is WindowOutcome.SUCCEEDED, early.notes
        ran = await asyncio.to_thread(CliRunner().invoke, windows_app, [
            "trigger", "--account", estate.gcp.account_id, "--group", "on-time", "--wait", "--json"])
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.output)
    assert summary["outcome"] == "succeeded"
    assert set(summary["train"]) == {"ubuntu", "rhel"} and all(n > 0 for n in summary["train"].values())
    (row,) = summary["instances"]
    assert row["os"] == "rhel" and row["status"] == "succeeded" and row["installed"] > 0 and row["missing"] == 0

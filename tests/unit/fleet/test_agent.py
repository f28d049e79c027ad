"""The simulated agent against a real local AWS: register, ping, execute RunPatchBaseline sent
with boto3 SendCommand, report patch states; cancellation, failure rate, override list, hooks, EC2."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from clouds.aws.baselines import BaselineSpec
from contracts.providers import OsFamily, PatchGroup
from localclouds.aws import REGION
from localclouds.aws.agent_client import AgentClient
from localclouds.fleet import catalogue
from localclouds.fleet.agent import Agent, AgentSettings, AgentVm, wait_online
from localclouds.fleet.platforms import PLATFORMS
from tests.unit.fleet.conftest import LocalAws


@dataclass
class Node:
    agent: Agent
    ssm: Any
    session: Any
    instance_id: str
    saves: list[int]


def _baseline(ssm: Any, os: OsFamily, group: PatchGroup) -> str:
    baseline_id = ssm.create_patch_baseline(**BaselineSpec(os, group).request())["BaselineId"]
    ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=group.value)
    return baseline_id


async def _call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, **kwargs)


async def _finished(ssm: Any, command_id: str, instance_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = await _call(ssm.get_command_invocation, CommandId=command_id, InstanceId=instance_id)
        if answer["Status"] not in ("Pending", "InProgress", "Delayed", "Cancelling"):
            return answer
        await asyncio.sleep(0.1)
    raise AssertionError(f"command {command_id} did not finish: {answer['Status']}")


@pytest.fixture
async def node_factory(local_aws: LocalAws, pool: ThreadPoolExecutor) -> AsyncIterator[Callable[..., Any]]:
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def make(os: OsFamily = OsFamily.RHEL, group: PatchGroup = PatchGroup.EARLY,
                   duration: float = 0.05, failure_rate: float = 0.0, ec2: bool = False) -> Node:
        account_id, session = local_aws.new_account()
        ssm = local_aws.client("ssm", session)
        await asyncio.to_thread(_baseline, ssm, os, group)
        now = datetime.now(UTC)
        software = catalogue.initial_software(catalogue.build(os, now), f"vm-{account_id}", now)
        saves: list[int] = []
        vm = AgentVm(f"vm-{account_id}", PLATFORMS[os], software, save=lambda: saves.append(1),
                     command_duration=duration, failure_rate=failure_rate)
        if ec2:
            ec2_client = local_aws.client("ec2", session)
            vm.ec2_instance_id = ec2_client.run_instances(
                ImageId="ami-12c6146b", MinCount=1, MaxCount=1, TagSpecifications=[
                    {"ResourceType": "instance", "Tags": [{"Key": "Patch Group", "Value": group.value}]}],
            )["Instances"][0]["InstanceId"]
            vm.account_id = account_id
        else:
            activation = ssm.create_activation(
                IamRole="SSMServiceRole", Tags=[{"Key": "Patch Group", "Value": group.value}])
            vm.registration = await asyncio.to_thread(
                AgentClient(local_aws.endpoint, REGION).register, activation["ActivationId"],
                activation["ActivationCode"])
        agent = Agent(vm, AgentSettings(local_aws.endpoint, REGION, poll_interval=0.1), pool)
        tasks.append(asyncio.create_task(agent.run(stop)))
        assert await wait_online(agent, 15), agent.last_error
        instance_id = vm.ec2_instance_id or vm.registration.instance_id  # type: ignore[union-attr]
        return Node(agent, ssm, session, instance_id, saves)

    yield make
    stop.set()
    await asyncio.gather(*tasks)


async def test_install_reports_patch_states_and_patches(node_factory: Callable[..., Any]) -> None:
    node = await node_factory(OsFamily.RHEL)
    info = (await _call(node.ssm.describe_instance_information))["InstanceInformationList"][0]
    assert (info["PingStatus"], info["PlatformName"]) == ("Online", "Red Hat Enterprise Linux")
    command = (await _call(node.ssm.send_command, InstanceIds=[node.instance_id],
                           DocumentName="AWS-RunPatchBaseline",
                           Parameters={"Operation": ["Install"], "RebootOption": ["NoReboot"]}))["Command"]
    result = await _finished(node.ssm, command["CommandId"], node.instance_id)
    assert result["Status"] == "Success", result["StandardOutputContent"]
    assert "Installed kernel.x86_64:0:4.18.0-513.18.1.el8_9" in result["StandardOutputContent"]
    (state,) = (await _call(node.ssm.describe_instance_patch_states,
                            InstanceIds=[node.instance_id]))["InstancePatchStates"]
    assert state["Operation"] == "Install" and state["PatchGroup"] == "early"
    assert state["MissingCount"] == 0 and state["InstalledPendingRebootCount"] >= 5
    assert state["RebootOption"] == "NoReboot" and "LastNoRebootInstallOperationTime" in state
    pending = (await _call(node.ssm.describe_instance_patches, InstanceId=node.instance_id,
                           Filters=[{"Key": "State", "Values": ["InstalledPendingReboot"]}]))["Patches"]
    assert "kernel.x86_64" in {p["KBId"] for p in pending}
    assert len(pending) == state["InstalledPendingRebootCount"]
    assert node.saves, "the VM's software must be saved after an install"

    # A Scan afterwards, then an Install with RebootIfNeeded clears the pending reboots.
    command = (await _call(node.ssm.send_command, InstanceIds=[node.instance_id],
                           DocumentName="AWS-RunPatchBaseline",
                           Parameters={"Operation": ["Install"]}))["Command"]
    assert (await _finished(node.ssm, command["CommandId"], node.instance_id))["Status"] == "Success"
    (state,) = (await _call(node.ssm.describe_instance_patch_states,
                            InstanceIds=[node.instance_id]))["InstancePatchStates"]
    assert state["InstalledPendingRebootCount"] == 0 and state["InstalledCount"] >= 5


async def test_cancel_mid_run_installs_nothing(node_factory: Callable[..., Any]) -> None:
    node = await node_factory(OsFamily.UBUNTU, duration=30)
    before = dict(node.agent.vm.software.packages)
    command = (await _call(node.ssm.send_command, InstanceIds=[node.instance_id],
                           DocumentName="AWS-RunPatchBaseline",
                           Parameters={"Operation": ["Install"]}))["Command"]
    deadline = time.monotonic() + 10
    while (await _call(node.ssm.get_command_invocation, CommandId=command["CommandId"],
                       InstanceId=node.instance_id))["Status"] != "InProgress":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    await _call(node.ssm.cancel_command, CommandId=command["CommandId"])
    result = await _finished(node.ssm, command["CommandId"], node.instance_id, timeout=10)
    assert result["Status"] == "Cancelled"
    assert node.agent.vm.software.packages == before
    # The agent forgets the cancelled task once its cancellation has run (it replied just before).
    deadline = time.monotonic() + 5
    while node.agent.running and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not node.agent.running


async def test_failure_rate_fails_the_command_and_reports_failed(node_factory: Callable[..., Any]) -> None:
    node = await node_factory(OsFamily.WINDOWS, failure_rate=1.0)
    command = (await _call(node.ssm.send_command, InstanceIds=[node.instance_id],
                           DocumentName="AWS-RunPatchBaseline",
                           Parameters={"Operation": ["Install"]}))["Command"]
    result = await _finished(node.ssm, command["CommandId"], node.instance_id)
    assert result["Status"] == "Failed"
    assert [line for line in result["StandardOutputContent"].splitlines() if line.startswith("Failed to install")]
    (state,) = (await _call(node.ssm.describe_instance_patch_states,
                            InstanceIds=[node.instance_id]))["InstancePatchStates"]
    assert state["FailedCount"] == 1
    shell = (await _call(node.ssm.send_command, InstanceIds=[node.instance_id],
                         DocumentName="AWS-RunPowerShellScript",
                         Parameters={"commands": ["Write-Output hello"]}))["Command"]
    assert (await _finished(node.ssm, shell["CommandId"], node.instance_id))["Status"] == "Failed"


async def test_override_list_from_s3_with_the_agents_credentials(local_aws: LocalAws,
                                                                 node_factory: Callable[..., Any]) -> None:
    node = await node_factory(OsFamily.UBUNTU, group=PatchGroup.LATE)
    s3 = local_aws.client("s3", node.session)
    await _call(s3.create_bucket, Bucket=f"train-{node.instance_id}")
    await _call(s3.put_object, Bucket=f"train-{node.instance_id}", Key="ubuntu/early.yaml",
                Body=b"patches:\n  - id: 'sudo.amd64'\n    title: '1.9.9-1ubuntu0.22.04.4'\n")
    url = f"s3://train-{node.instance_id}/ubuntu/early.yaml"
    command = (await _call(node.ssm.send_command, InstanceIds=[node.instance_id],
                           DocumentName="AWS-RunPatchBaseline",
                           Parameters={"Operation": ["Install"], "InstallOverrideList": [url]}))["Command"]
    result = await _finished(node.ssm, command["CommandId"], node.instance_id)
    assert result["Status"] == "Success", result["StandardOutputContent"]
    installed = [line for line in result["StandardOutputContent"].splitlines() if line.startswith("Installed ")]
    assert installed == ["Installed sudo.amd64:1.9.9-1ubuntu0.22.04.4"]
    (state,) = (await _call(node.ssm.describe_instance_patch_states,
                            InstanceIds=[node.instance_id]))["InstancePatchStates"]
    assert state["InstallOverrideList"] == url
    missing = (await _call(node.ssm.send_command, InstanceIds=[node.instance_id],
                           DocumentName="AWS-RunPatchBaseline",
                           Parameters={"Operation": ["Install"], "InstallOverrideList": ["s3://nope-bucket/x.yaml"]}))["Command"]
    failed = await _finished(node.ssm, missing["CommandId"], node.instance_id)
    assert failed["Status"] == "Failed" and "install override list" in failed["StandardOutputContent"]


async def test_hooks_run_around_the_install(node_factory: Callable[..., Any]) -> None:
    node = await node_factory(OsFamily.AMAZON_LINUX_2)
    content = '{"schemaVersion": "2.2", "description": "hook", "mainSteps": [{"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": ["echo draining", "exit 3"]}}]}'
    await _call(node.ssm.create_document, Name="DrainHook", Content=content, DocumentType="Command")
    before = dict(node.agent.vm.software.packages)
    command = (await _call(node.ssm.send_command, InstanceIds=[node.instance_id],
                           DocumentName="AWS-RunPatchBaselineWithHooks",
                           Parameters={"Operation": ["Install"], "PreInstallHookDocName": ["DrainHook"]}))["Command"]
    result = await _finished(node.ssm, command["CommandId"], node.instance_id)
    assert result["Status"] == "Failed" and "draining" in result["StandardOutputContent"]
    assert node.agent.vm.software.packages == before  # the failing pre-install hook stopped it
    plugins = (await _call(node.ssm.list_command_invocations, CommandId=command["CommandId"],
                           Details=True))["CommandInvocations"][0]["CommandPlugins"]
    assert [p["Name"] for p in plugins] == ["ScanForPatches", "PreInstallHook", "OnExitHook"]
    ok = (await _call(node.ssm.send_command, InstanceIds=[node.instance_id],
                      DocumentName="AWS-RunPatchBaselineWithHooks",
                      Parameters={"Operation": ["Install"]}))["Command"]
    assert (await _finished(node.ssm, ok["CommandId"], node.instance_id))["Status"] == "Success"
    plugins = (await _call(node.ssm.list_command_invocations, CommandId=ok["CommandId"],
                           Details=True))["CommandInvocations"][0]["CommandPlugins"]
    assert [p["Name"] for p in plugins] == ["ScanForPatches", "PreInstallHook", "InstallPatches",
                                            "PostInstallHook", "RebootAndReport", "OnExitHook"]
    assert not node.agent.vm.software.pending_reboot


async def test_an_ec2_vms_preinstalled_agent(node_factory: Callable[..., Any]) -> None:
    node = await node_factory(OsFamily.AMAZON_LINUX_2, ec2=True)
    assert node.instance_id.startswith("i-")
    (info,) = (await _call(node.ssm.describe_instance_information))["InstanceInformationList"]
    assert (info["InstanceId"], info["ResourceType"]) == (node.instance_id, "EC2Instance")
    command = (await _call(node.ssm.send_command, Targets=[{"Key": "tag:Patch Group", "Values": ["early"]}],
                           DocumentName="AWS-RunShellScript",
                           Parameters={"commands": ["echo patched from $(hostname)"]}))["Command"]
    result = await _finished(node.ssm, command["CommandId"], node.instance_id)
    assert result["Status"] == "Success" and "patched from" in result["StandardOutputContent"]
    scan = (await _call(node.ssm.send_command, InstanceIds=[node.instance_id],
                        DocumentName="AWS-RunPatchBaseline", Parameters={"Operation": ["Scan"]}))["Command"]
    assert (await _finished(node.ssm, scan["CommandId"], node.instance_id))["Status"] == "Success"
    (state,) = (await _call(node.ssm.describe_instance_patch_states,
                            InstanceIds=[node.instance_id]))["InstancePatchStates"]
    assert state["Operation"] == "Scan" and state["MissingCount"] > 0


async def test_inventory_association_reports_the_vms_software(node_factory: Callable[..., Any]) -> None:
    node = await node_factory(OsFamily.UBUNTU)
    association = (await _call(
        node.ssm.create_association, Name="AWS-GatherSoftwareInventory",
        AssociationName="fleetpatch-inventory", Targets=[{"Key": "InstanceIds", "Values": ["*"]}],
        ScheduleExpression="rate(12 hours)", Parameters={"applications": ["Enabled"]},
    ))["AssociationDescription"]
    await node.agent.check_associations()  # what the agent does after each ping
    assert node.agent._associating is not None
    await node.agent._associating
    entries = (await _call(node.ssm.list_inventory_entries, InstanceId=node.instance_id,
                           TypeName="AWS:Application", MaxResults=50))["Entries"]
    software = node.agent.vm.software.packages
    assert {(e["Name"], e["Version"]) for e in entries} == {("amazon-ssm-agent", "3.3.1142.0")} | {
        (package.rsplit(".", 1)[0], version) for package, version in software.items()}
    (status,) = (await _call(node.ssm.describe_instance_associations_status,
                             InstanceId=node.instance_id))["InstanceAssociationStatusInfos"]
    assert (status["AssociationId"], status["Status"]) == (association["AssociationId"], "Success")
    (info,) = (await _call(node.ssm.describe_instance_information))["InstanceInformationList"]
    assert info["AssociationStatus"] == "Success"
    ran = node.agent.association_runs[association["AssociationId"]]
    await node.agent.check_associations()  # not due again for 12 hours
    assert node.agent.association_runs[association["AssociationId"]] == ran


def test_association_schedules() -> None:
    from datetime import timedelta

    from localclouds.fleet.agent import association_due

    now = datetime(2024, 7, 1, 12, tzinfo=UTC)
    assert association_due(None, "rate(30 minutes)", now)
    assert not association_due(now - timedelta(minutes=29), "rate(30 minutes)", now)
    assert association_due(now - timedelta(minutes=30), "rate(30 minutes)", now)
    assert not association_due(now - timedelta(hours=11), "rate(12 hours)", now)
    assert association_due(now - timedelta(days=1), "cron(0 2 ? * * *)", now)
    assert not association_due(now - timedelta(days=30), None, now)


async def test_windows_inventory_reports_programs_and_updates(node_factory: Callable[..., Any]) -> None:
    node = await node_factory(OsFamily.WINDOWS)
    await _call(node.ssm.create_association, Name="AWS-GatherSoftwareInventory",
                Targets=[{"Key": "InstanceIds", "Values": ["*"]}], ScheduleExpression="rate(1 day)",
                Parameters={"applications": ["Enabled"], "windowsUpdates": ["Enabled"]})
    await node.agent.check_associations()
    await node.agent._associating  # type: ignore[misc]
    apps = (await _call(node.ssm.list_inventory_entries, InstanceId=node.instance_id,
                        TypeName="AWS:Application"))["Entries"]
    assert "Microsoft Edge" in {a["Name"] for a in apps}
    updates = (await _call(node.ssm.list_inventory_entries, InstanceId=node.instance_id,
                           TypeName="AWS:WindowsUpdate", MaxResults=50))["Entries"]
    assert {u["HotFixId"] for u in updates} == node.agent.vm.software.kbs

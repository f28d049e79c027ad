"""clouds/aws/ssm_commands.py against the real local AWS: targets, sends, progress, cancel,
patch states, throttling; and the rate limiter on a fake clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from clouds.aws.ssm_commands import READ, SEND, RateLimiter, SsmCommands, classify, comment_for, os_of_platform
from contracts.errors import ErrorType, TransientCloudError
from contracts.patch_batches import CommandSpec
from contracts.patching import InstanceStatus, Operation, PatchRef
from localclouds.aws.agent_client import patch_summary_item, reply_payload

WINDOWS = ("Microsoft Windows Server 2022 Datacenter", "Windows", "10.0.20348")
UBUNTU = ("Ubuntu", "Linux", "22.04")
AL2 = ("Amazon Linux", "Linux", "2")


def _commands(sessions) -> SsmCommands:
    return SsmCommands(sessions, RateLimiter({SEND: 50.0, READ: 200.0}))


def _agents(local_aws, ssm, group: str, platform, count: int):
    activation = ssm.create_activation(IamRole="R", RegistrationLimit=count, Tags=[{"Key": "Patch Group", "Value": group}])
    return [local_aws.agent(ssm, activation, platform) for _ in range(count)]


def _spec(ids, **kw) -> CommandSpec:
    fields = {"index": 0, "key": f"patch-window/test/{uuid.uuid4().hex}/b0/c0", "os": "ubuntu",
              "instance_ids": ids, "operation": Operation.INSTALL}
    fields.update(kw)
    return CommandSpec(**fields)


def test_targets_are_online_instances_of_the_group_by_os(local_aws, account_ssm, sessions, systems_account) -> None:
    ubuntu = _agents(local_aws, account_ssm, "on-time", UBUNTU, 3)
    windows = _agents(local_aws, account_ssm, "on-time", WINDOWS, 2)
    al2 = _agents(local_aws, account_ssm, "on-time", AL2, 1)
    _agents(local_aws, account_ssm, "late", UBUNTU, 2)
    silent = account_ssm.create_activation(IamRole="R", Tags=[{"Key": "Patch Group", "Value": "on-time"}])
    local_aws.agent(account_ssm, silent, ping=False)  # registered, never pinged: not Online
    pages = []
    found = _commands(sessions).targets(systems_account, "on-time", on_page=lambda: pages.append(1))
    assert found == {
        "amazon-linux-2": [a.instance_id for a in al2],
        "ubuntu": sorted(a.instance_id for a in ubuntu),
        "windows": sorted(a.instance_id for a in windows),
    }
    assert pages  # heartbeat hook called per page


def test_send_names_at_most_50_and_a_retry_adopts_its_command(local_aws, account_ssm, sessions, systems_account) -> None:
    agents = _agents(local_aws, account_ssm, "early", UBUNTU, 2)
    commands = _commands(sessions)
    spec = _spec([a.instance_id for a in agents], install_override_list="s3://bucket/patch-train/t/ubuntu.yaml",
                 snapshot_id=str(uuid.uuid4()), max_concurrency="1", max_errors="0", reboot="NoReboot")
    started = datetime.now(UTC) - timedelta(minutes=1)
    first = commands.send(systems_account, spec, delivery_timeout_seconds=900, sent_after=started)
    again = commands.send(systems_account, spec, delivery_timeout_seconds=900, sent_after=started, retrying=True)
    assert again == first
    listed = account_ssm.list_commands()["Commands"]
    assert [c["CommandId"] for c in listed] == [first]
    command = listed[0]
    assert command["DocumentName"] == "AWS-RunPatchBaseline"
    assert command["Parameters"]["InstallOverrideList"] == ["s3://bucket/patch-train/t/ubuntu.yaml"]
    assert command["Parameters"]["Operation"] == ["Install"]
    assert command["Parameters"]["RebootOption"] == ["NoReboot"]
    assert command["Parameters"]["SnapshotId"] == [spec.snapshot_id]
    assert command["MaxConcurrency"] == "1" and command["MaxErrors"] == "0"
    assert command["TimeoutSeconds"] == 900 and command["Comment"] == spec.key
    with pytest.raises(ValueError):
        commands.send(systems_account, _spec([f"mi-{n:017x}" for n in range(51)]), delivery_timeout_seconds=60)


def test_hooks_document_takes_hooks_and_no_override_list(local_aws, account_ssm, sessions, systems_account) -> None:
    from contracts.patch_config import Hooks

    agent = _agents(local_aws, account_ssm, "early", UBUNTU, 1)[0]
    spec = _spec([agent.instance_id], document="AWS-RunPatchBaselineWithHooks",
                 hooks=Hooks(pre_install="Acme-Drain"), install_override_list="s3://ignored")
    command_id = _commands(sessions).send(systems_account, spec, delivery_timeout_seconds=60)
    params = account_ssm.list_commands(CommandId=command_id)["Commands"][0]["Parameters"]
    assert params["PreInstallHookDocName"] == ["Acme-Drain"] and "InstallOverrideList" not in params


def test_progress_invocations_and_cancel_of_what_has_not_started(local_aws, account_ssm, sessions, systems_account) -> None:
    agents = _agents(local_aws, account_ssm, "early", UBUNTU, 3)
    commands = _commands(sessions)
    command_id = commands.send(systems_account, _spec([a.instance_id for a in agents], max_concurrency="1", max_errors="3"),
                               delivery_timeout_seconds=600)
    running = next(a for a in agents if a.get_messages(visibility_timeout=0))
    message = running.get_messages(visibility_timeout=0)[0]
    running.acknowledge_message(message["MessageId"])
    assert commands.cancel_pending(systems_account, command_id) == 2  # the two waiting ones
    progress = commands.progress(systems_account, [command_id])[0]
    assert progress.status == "InProgress" and not progress.done and progress.target_count == 3
    running.send_reply(message["MessageId"], reply_payload("Failed", "PatchLinux", output="apt-get failed\nE: dpkg lock", code=1))
    progress = commands.progress(systems_account, [command_id])[0]
    assert progress.done and progress.error_count == 1 and progress.completed_count == 3
    by_id = {i.instance_id: classify(i) for i in commands.invocations(systems_account, command_id)}
    assert by_id[running.instance_id] == (InstanceStatus.FAILED, "command failed (Failed): E: dpkg lock")
    others = [by_id[a.instance_id][0] for a in agents if a is not running]
    assert others == [InstanceStatus.CANCELLED, InstanceStatus.CANCELLED]


def test_patch_states_and_patches_installed_since(local_aws, account_ssm, sessions, systems_account) -> None:
    agent = _agents(local_aws, account_ssm, "early", UBUNTU, 1)[0]
    now = datetime.now(UTC)
    agent.put_inventory([patch_summary_item(
        now, PatchGroup="early", BaselineId="pb-0123456789abcdef0", InstalledCount=12, MissingCount=1, FailedCount=1,
        InstalledPendingRebootCount=2, Operation="Install", OperationStartTime=(now - timedelta(minutes=3)).isoformat(),
        OperationEndTime=now.isoformat())])
    items = [
        _item("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15", "Installed", now - timedelta(minutes=2)),
        _item("tzdata.all", "tzdata.all:2024a-0ubuntu0.22.04", "InstalledPendingReboot", now - timedelta(minutes=1)),
        _item("bash.amd64", "bash.amd64:5.1-6ubuntu1", "Installed", now - timedelta(days=40)),  # an earlier window
        _item("curl.amd64", "curl.amd64:7.81.0-1ubuntu1.16", "Failed", None),
        _item("vim.amd64", "vim.amd64:2:8.2.3995-1ubuntu2.17", "Missing", None),
    ]
    agent.put_compliance_items("Patch", items, now)
    commands = _commands(sessions)
    state = commands.patch_states(systems_account, [agent.instance_id])[agent.instance_id]
    assert (state["InstalledCount"], state["MissingCount"], state["FailedCount"]) == (12, 1, 1)
    installed, failed = commands.patches_since(systems_account, agent.instance_id, now - timedelta(minutes=5))
    assert sorted(installed, key=lambda p: p.id) == [
        PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15"), PatchRef("tzdata.all", "tzdata.all:2024a-0ubuntu0.22.04")]
    assert failed == [PatchRef("curl.amd64", "curl.amd64:7.81.0-1ubuntu1.16")]


def test_a_patch_installed_in_the_second_the_window_opened_counts(local_aws, account_ssm, sessions, systems_account) -> None:
    """InstalledTime has whole seconds; the window's start has microseconds. An install in the very
    second the window opened (a fast window: an early train of one VM) is this window's, not an
    older one (it once left the train empty now and then)."""
    agent = _agents(local_aws, account_ssm, "early", UBUNTU, 1)[0]
    opened = datetime.now(UTC).replace(microsecond=700_000)
    items = [_item("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15", "Installed", opened.replace(microsecond=900_000)),
             _item("bash.amd64", "bash.amd64:5.1-6ubuntu1", "Installed", opened - timedelta(seconds=1))]
    agent.put_compliance_items("Patch", items, opened)
    installed, _ = _commands(sessions).patches_since(systems_account, agent.instance_id, opened)
    assert installed == [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")]


def test_throttling_maps_to_aws_throttled(local_aws, account_ssm, sessions, systems_account, no_faults) -> None:
    agent = _agents(local_aws, account_ssm, "early", UBUNTU, 1)[0]
    local_aws.control("/__fleetpatch/faults", "POST", {"service": "ssm", "action": "SendCommand", "throttle_rate": 1.0})
    with pytest.raises(TransientCloudError) as raised:
        _commands(sessions).send(systems_account, _spec([agent.instance_id]), delivery_timeout_seconds=60)
    assert raised.value.type is ErrorType.AWS_THROTTLED and raised.value.retryable


def test_rate_limiter_paces_each_account_and_kind() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter({SEND: 2.0, READ: 10.0}, clock=lambda: now[0], sleep=sleep)
    waits = [limiter.acquire("111111111111", SEND) for _ in range(5)]
    assert waits[0] == 0.0 and now[0] == pytest.approx(2.0)  # 5 sends at 2/s: 1 at once, 4 paced
    assert limiter.acquire("222222222222", SEND) == 0.0  # another account has its own bucket
    assert limiter.acquire("111111111111", READ) == 0.0  # and so has another kind
    assert all(s == pytest.approx(0.5) for s in slept)


def test_platforms_map_to_os_families_and_comments_fit() -> None:
    assert os_of_platform("Microsoft Windows Server 2019 Datacenter", "10.0.17763") == "windows"
    assert os_of_platform("Ubuntu", "22.04") == "ubuntu"
    assert os_of_platform("Debian GNU/Linux", "12") == "debian"
    assert os_of_platform("Red Hat Enterprise Linux", "9.3") == "rhel"
    assert os_of_platform("Amazon Linux", "2") == "amazon-linux-2"
    assert os_of_platform("Amazon Linux AMI", "2018.03") == "amazon-linux"
    assert os_of_platform("Amazon Linux", "2023") == "unknown"
    assert os_of_platform(None) == "unknown"
    long_key = "patch-window/123456789012/on-time-2026-01-20T02:00:00Z/" + "x" * 80
    assert len(comment_for(long_key)) == 100 and comment_for(long_key) != comment_for(long_key + "y")
    assert comment_for("short") == "short"


def _item(kb: str, title: str, state: str, installed: datetime | None) -> dict:
    details = {"Classification": "", "PatchSeverity": "Important", "PatchState": state}
    if installed is not None:
        details["InstalledTime"] = installed.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"Id": kb, "Title": title, "Severity": "HIGH", "Status": "COMPLIANT" if state.startswith("Installed") else "NON_COMPLIANT",
            "Details": details}

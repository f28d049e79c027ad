"""The aws-worker patching activities against the real local AWS: a batch sent, run by simulated
agents (the real agent protocol), polled, collected with patch states and installed patches."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import ActivityEnvironment

from activities.patching import PatchingActivities
from clouds.aws.ssm_commands import READ, SEND, RateLimiter
from config.settings import AwsSettings, PatchingSettings
from contracts.patch_batches import CollectBatchInput, CommandSpec, PollCommandsInput, SendCommandInput
from contracts.patching import InstanceStatus, Operation, PatchRef
from localclouds.aws.agent_client import patch_summary_item, reply_payload

UBUNTU = ("Ubuntu", "Linux", "22.04")


@pytest.fixture
def activities(sessions) -> PatchingActivities:
    slept: list[float] = []
    acts = PatchingActivities(AwsSettings(), PatchingSettings(), sessions=sessions,
                              limiter=RateLimiter({SEND: 50.0, READ: 200.0}), sleep=slept.append)
    acts.slept = slept  # type: ignore[attr-defined]
    return acts


def test_send_poll_collect_a_batch(local_aws, account_ssm, activities, systems_account) -> None:
    activation = account_ssm.create_activation(IamRole="R", RegistrationLimit=3, Tags=[{"Key": "Patch Group", "Value": "early"}])
    good, bad, away = (local_aws.agent(account_ssm, activation, UBUNTU) for _ in range(3))
    started = datetime.now(UTC) - timedelta(seconds=5)
    spec = CommandSpec(index=0, key=f"w-{uuid.uuid4().hex}/b0/c0", os="ubuntu",
                       instance_ids=[good.instance_id, bad.instance_id], operation=Operation.INSTALL)
    never = CommandSpec(index=1, key="never-sent", os="ubuntu", instance_ids=[away.instance_id], operation=Operation.INSTALL)
    env = ActivityEnvironment()
    sent = env.run(activities.send_patch_command, SendCommandInput(systems_account, spec, 600, started))

    # Nothing changed yet: the poll waits (a fake sleep here) until its wait is used up.
    clock = iter(range(0, 1000, 20))
    activities._clock = lambda: float(next(clock))
    waiting = env.run(activities.poll_patch_commands, PollCommandsInput(systems_account, [sent.command_id], wait_seconds=30))
    assert not waiting.progress[0].done and activities.slept  # type: ignore[attr-defined]

    now = datetime.now(UTC)
    _run(good, "Success", "Installed 2 patches")
    _report(good, now, installed=[("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15"),
                                  ("tzdata.all", "tzdata.all:2024a-0ubuntu0.22.04")], failed=[])
    _run(bad, "Failed", "E: Sub-process /usr/bin/dpkg returned an error code (1)", code=1)
    _report(bad, now, installed=[("tzdata.all", "tzdata.all:2024a-0ubuntu0.22.04")],
            failed=[("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")])
    done = env.run(activities.poll_patch_commands, PollCommandsInput(systems_account, [sent.command_id], wait_seconds=0))
    assert done.progress[0].done and done.progress[0].error_count == 1

    result = env.run(activities.collect_patch_batch, CollectBatchInput(
        account=systems_account, window_id=f"patch-window/{systems_account.account_id}/early-test", batch=0,
        sent=[sent], specs=[spec, never], not_dispatched_reason="the cutoff came before it was dispatched",
        since=started, record_patches=True,
    ))
    rows = {r.instance_id: r for r in result.instances}
    assert rows[good.instance_id].status is InstanceStatus.SUCCEEDED
    assert (rows[good.instance_id].installed, rows[good.instance_id].missing) == (2, 0)
    assert rows[bad.instance_id].status is InstanceStatus.FAILED
    assert rows[bad.instance_id].reason == "command failed (Failed): E: Sub-process /usr/bin/dpkg returned an error code (1)"
    assert rows[bad.instance_id].failed == 1
    assert rows[away.instance_id].status is InstanceStatus.NOT_DISPATCHED
    assert result.errors == 1
    assert result.installed == {"ubuntu": [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15"),
                                           PatchRef("tzdata.all", "tzdata.all:2024a-0ubuntu0.22.04")]}
    assert result.failed_patches == {"ubuntu": [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")]}
    assert result.report_url and result.report_url.endswith("/batch-0000.json")

    train = activities._store.record_train(systems_account, train_id="t", recorded_by="w", installed=result.installed,
                                           failed=result.failed_patches, covered_os=["ubuntu"])
    assert train.per_os["ubuntu"].count == 1  # openssl failed somewhere in early: not promoted


def _run(agent, status: str, output: str, code: int = 0) -> None:
    message = agent.get_messages(visibility_timeout=0)[0]
    agent.acknowledge_message(message["MessageId"])
    agent.send_reply(message["MessageId"], reply_payload(status, "PatchLinux", output=output, code=code))


def _report(agent, now: datetime, installed: list, failed: list) -> None:
    agent.put_inventory([patch_summary_item(
        now, PatchGroup="early", BaselineId="pb-0123456789abcdef0", InstalledCount=len(installed), MissingCount=0,
        FailedCount=len(failed), InstalledPendingRebootCount=0, Operation="Install",
        OperationStartTime=now.isoformat(), OperationEndTime=now.isoformat())])
    items = [{"Id": kb, "Title": title, "Severity": "HIGH", "Status": "COMPLIANT",
              "Details": {"PatchState": "Installed", "InstalledTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}}
             for kb, title in installed]
    items += [{"Id": kb, "Title": title, "Severity": "HIGH", "Status": "NON_COMPLIANT", "Details": {"PatchState": "Failed"}}
              for kb, title in failed]
    agent.put_compliance_items("Patch", items, now)

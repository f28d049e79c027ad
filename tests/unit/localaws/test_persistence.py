"""The local AWS keeps its state across restarts (saved under its state dir, loaded at start)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from localclouds.aws import REGION, state_path
from localclouds.aws.agent_client import AgentClient
from localclouds.aws.persistence import header_problem, state_file
from tests.support.local_aws import LocalAws, running_local_aws


def _start(state_dir: Path, save_interval: float = 5.0) -> Any:
    return running_local_aws(state_dir, create_account_delay=0, ping_timeout=600,
                             save_interval=save_interval)


def _make_state(aws: LocalAws) -> dict[str, Any]:
    """Accounts, parameters, S3 objects, tags, an activation and a managed instance."""
    org = aws.client("organizations")
    request = org.create_account(Email="acme-gcp@systems.fleetpatch.example", AccountName="acme",
                                 Tags=[{"Key": "fleetpatch:cloud-account", "Value": "gcp/acme"}])
    status = org.describe_create_account_status(
        CreateAccountRequestId=request["CreateAccountStatus"]["Id"])["CreateAccountStatus"]
    assert status["State"] == "SUCCEEDED"
    account_id = status["AccountId"]
    aws.client("ssm").put_parameter(Name="/fleetpatch/links/gcp/acme", Value="x-secret",
                                    Type="SecureString")
    session = aws.assume(account_id)
    s3 = aws.client("s3", session)
    s3.create_bucket(Bucket="patch-train")
    s3.put_object(Bucket="patch-train", Key="early/train.json", Body=b'{"kb": [1]}')
    ssm = aws.client("ssm", session)
    used = ssm.create_activation(IamRole="SSMServiceRole", RegistrationLimit=1,
                                 Tags=[{"Key": "Patch Group", "Value": "early"}])
    agent = aws.agent(ssm, used)
    spare = ssm.create_activation(IamRole="SSMServiceRole", RegistrationLimit=1)
    return {"account": account_id, "instance": agent.instance_id, "agent": agent,
            "spare": spare["ActivationId"]}


def _assert_state(aws: LocalAws, made: dict[str, Any]) -> None:
    org = aws.client("organizations")
    accounts = {a["Id"]: a for a in org.list_accounts()["Accounts"]}
    assert made["account"] in accounts
    tags = org.list_tags_for_resource(ResourceId=made["account"])["Tags"]
    assert {"Key": "fleetpatch:cloud-account", "Value": "gcp/acme"} in tags
    parameter = aws.client("ssm").get_parameter(Name="/fleetpatch/links/gcp/acme",
                                                WithDecryption=True)["Parameter"]
    assert (parameter["Type"], parameter["Value"]) == ("SecureString", "x-secret")
    session = aws.assume(made["account"])
    body = aws.client("s3", session).get_object(Bucket="patch-train", Key="early/train.json")
    assert body["Body"].read() == b'{"kb": [1]}'
    ssm = aws.client("ssm", session)
    info = ssm.describe_instance_information()["InstanceInformationList"]
    assert [i["InstanceId"] for i in info] == [made["instance"]]
    instance_tags = ssm.list_tags_for_resource(ResourceType="ManagedInstance",
                                               ResourceId=made["instance"])["TagList"]
    assert {"Key": "Patch Group", "Value": "early"} in instance_tags
    activations = {a["ActivationId"] for a in ssm.describe_activations()["ActivationList"]}
    assert made["spare"] in activations


def test_state_survives_a_clean_restart(tmp_path: Path) -> None:
    with _start(tmp_path, save_interval=0) as aws:  # saved at SIGTERM only
        made = _make_state(aws)
    assert header_problem(state_file(state_path(tmp_path))) is None
    with _start(tmp_path) as aws:
        _assert_state(aws, made)
        # The agent registered before the restart still gets credentials (its key was kept).
        agent = AgentClient(aws.endpoint, REGION).session(made["agent"].registration)
        agent.update_instance_information(AgentVersion="3.3.1142.0", PlatformName="Ubuntu",
                                                  PlatformType="Linux", PlatformVersion="22.04")
        # New work goes on in the same organization.
        org = aws.client("organizations")
        request = org.create_account(Email="acme-az@systems.fleetpatch.example",
                                     AccountName="acme-az")
        assert org.describe_create_account_status(
            CreateAccountRequestId=request["CreateAccountStatus"]["Id"]
        )["CreateAccountStatus"]["State"] == "SUCCEEDED"
        assert len(org.list_accounts()["Accounts"]) == 3


def test_kill_9_loses_at_most_the_last_period(tmp_path: Path) -> None:
    interval = 1.0
    with _start(tmp_path, save_interval=interval) as aws:
        made = _make_state(aws)
        time.sleep(interval * 3)  # a periodic save has happened since
        aws.client("ssm").put_parameter(Name="/late", Value="v", Type="String")
        assert aws.process is not None
        os.kill(aws.process.pid, signal.SIGKILL)
        aws.process.wait(timeout=10)
    started = time.monotonic()
    with _start(tmp_path) as aws:
        _assert_state(aws, made)
    print(f"\nrestart after kill -9: state of {interval}s ago restored, "
          f"restart took {time.monotonic() - started:.1f}s")


def test_an_unreadable_state_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    path = state_file(state_path(tmp_path))
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"format": 1, "moto": "0.0.1"}\n...')
    assert "moto 0.0.1" in (header_problem(path) or "")
    with pytest.raises(RuntimeError, match="fleetpatch reset"):
        with _start(tmp_path):
            pass


def test_a_state_slow_to_save_spaces_its_saves_out(tmp_path: Path) -> None:
    """Saves hold requests back; a large state (seconds to pickle) is saved less often, so the
    pauses stay a small share of the time, and a small one keeps the configured period."""
    import threading

    from localclouds.aws.persistence import PAUSE_SHARE, Gate, StateStore, next_save_in

    assert next_save_in(5.0, 0.01) == 5.0
    assert next_save_in(5.0, 2.0) == 2.0 * PAUSE_SHARE
    assert PAUSE_SHARE >= 10

    class SlowApp:
        gate, changed = Gate(), threading.Event()

        def state_objects(self) -> dict[str, Any]:
            time.sleep(0.2)  # a snapshot that takes a while
            return {}

    store = StateStore(tmp_path, SlowApp(), interval=0.05)
    assert store.save() >= 0.2
    saves = []
    store.save = lambda timeout=10.0: (saves.append(time.monotonic()), 0.2)[1]  # type: ignore[method-assign]
    store.dirty.set()
    store.start()
    time.sleep(1.5)
    store._stop.set()
    assert 1 <= len(saves) <= 2, saves  # every 0.2 * PAUSE_SHARE = 4 s, not every 0.05 s

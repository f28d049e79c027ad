"""The p3 agent swarm over the real protocol: several activations (SSM's limit is 1,000
registrations each), agents registered concurrently and their loops started once all have,
every one online in its own systems
account and acting only as itself; and p4 refuses a sample too small to measure."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import open_enrollments
from benchmarks.figures import Results
from localclouds.aws import REGION
from tests.support.local_aws import running_local_aws

REPO = Path(__file__).resolve().parents[3]


def test_the_swarm_registers_over_several_activations_and_comes_online(tmp_path: Path) -> None:
    with running_local_aws(tmp_path, create_account_delay=0, ping_timeout=60) as aws:
        _, session = aws.new_account()
        ssm = aws.client("ssm", session)
        made = [ssm.create_activation(IamRole="R", RegistrationLimit=limit, Tags=[{"Key": "Patch Group", "Value": "early"}])
                for limit in (2, 1)]
        status = tmp_path / "swarm.json"
        args = [a for m in made for a in ("--activation", f"{m['ActivationId']}:{m['ActivationCode']}")]
        swarm = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.swarm", "--endpoint", aws.endpoint, "--region", REGION, *args,
             "--per-activation", "2", "--count", "3", "--status", str(status), "--poll-interval", "1"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline, seen = time.monotonic() + 60, []
            while time.monotonic() < deadline:
                if status.exists() and (seen := [*seen, json.loads(status.read_text())])[-1]["online"] == 3:
                    break
                assert swarm.poll() is None, swarm.stderr.read() if swarm.stderr else ""
                time.sleep(0.5)
            else:
                pytest.fail(f"the swarm did not come online: {status.read_text() if status.exists() else 'no status'}")
        finally:
            swarm.terminate()
            swarm.wait(timeout=30)
        # no agent's loop (ping, poll) runs before every agent has registered
        assert all(s["registered"] == 3 for s in seen if s["online"]), seen
        listed = ssm.describe_instance_information()["InstanceInformationList"]
        assert len(listed) == 3 and all(i["PingStatus"] == "Online" for i in listed)
        assert min(i["LastPingDateTime"] for i in listed) >= max(i["RegistrationDate"] for i in listed)
        assert {i["ActivationId"] for i in listed} == {m["ActivationId"] for m in made}
        counts = {a["ActivationId"]: a["RegistrationsCount"] for a in ssm.describe_activations()["ActivationList"]}
        assert counts == {made[0]["ActivationId"]: 2, made[1]["ActivationId"]: 1}
        tags = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=listed[0]["InstanceId"])["TagList"]
        assert {"Key": "Patch Group", "Value": "early"} in tags


def test_p4_refuses_a_sample_too_small_to_measure() -> None:
    with pytest.raises(ValueError, match="at least 500"):
        asyncio.run(open_enrollments.run(None, Results(), 100, "250 runs"))  # type: ignore[arg-type]

"""Fault tests (``make chaos``): the local default (``fleetpatch up``, real processes) under a storm
of registrations over four clouds while processes die, Temporal restarts and AWS throttles.

Each storm is ``fleetpatch simulate`` booting VMs that run the real startup script; each brings
new customers (so new systems accounts are vended during it). After each storm the invariants
are audited from the systems of record (the local AWS through boto3, the fleet host): every VM
enrolled, one systems account per customer cloud account, one managed instance per hybrid VM and
no activation left behind. Each test prints its figures.

Sizes: ``FLEETPATCH_CHAOS_VMS`` VMs per storm (default 40, to keep CI bounded on two cores; the
issue's target is 100: ``FLEETPATCH_CHAOS_VMS=100 make chaos``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from contracts.enrollment import TAG_CLOUD_ACCOUNT, TAG_PROVIDER
from localclouds.aws import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from tests.integration.test_up import _env, _start, _stop

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

VMS = int(os.environ.get("FLEETPATCH_CHAOS_VMS", "40"))
STORM_TIMEOUT = float(os.environ.get("FLEETPATCH_CHAOS_TIMEOUT", "1500"))
SIMULATE = [sys.executable, "-c", "import typer; from clients.cli.simulate_cmd import simulate; typer.run(simulate)"]
ROLES = ("worker-aws", "worker-orchestrator", "api", "worker-gcp", "worker-azure", "worker-vmware", "worker-ec2")
#: what the product's aws and ec2 workers call (the simulated agents' own calls are left alone)
CONTROL_PLANE = ("organizations", "iam", "sts", "s3", "ec2")
SSM_CONTROL_ACTIONS = ("CreateActivation", "DeleteActivation", "DescribeActivations", "DescribeInstanceInformation",
                       "AddTagsToResource", "ListTagsForResource", "GetParameter", "PutParameter",
                       "CreatePatchBaseline", "RegisterPatchBaselineForPatchGroup", "CreateAssociation")


class Local:
    """The running local default, read from its local.json."""

    def __init__(self, state: Path, env: dict[str, str]) -> None:
        self.state, self.env = state, env

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads((self.state / "local.json").read_text())

    def pid(self, name: str) -> int:
        return int(self.doc["processes"][name])

    def wait_restarted(self, name: str, old_pid: int, timeout: float = 90) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            pid = self.doc["processes"].get(name)
            if pid and pid != old_pid:
                return time.monotonic() - started
            time.sleep(0.5)
        raise AssertionError(f"{name} was not restarted")

    def vms(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.doc['fleet']['url']}/vms", timeout=30).json()["vms"]

    def aws(self, service: str, session: boto3.Session | None = None) -> Any:
        session = session or boto3.Session(aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)
        return session.client(service, endpoint_url=self.doc["aws"], region_name=REGION)

    def faults(self, method: str, rule: dict[str, Any] | None = None) -> None:
        httpx.request(method, f"{self.doc['aws']}/__fleetpatch/faults", json=rule, timeout=10).raise_for_status()


def _wait_healthy(local: Local, proc: subprocess.Popen[bytes], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "fleetpatch up exited early"
        try:
            doc = local.doc
            if doc.get("running") and httpx.get(doc["api"] + "/healthz", timeout=2).status_code == 200 and \
                    httpx.get(doc["fleet"]["url"] + "/vms", timeout=2).status_code == 200:
                return
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            pass
        time.sleep(1)
    raise AssertionError("fleetpatch up did not become healthy")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    root = tmp_path_factory.mktemp("chaos")
    state = root / ".fleetpatch"
    env = _env(state)
    proc = _start(state, env)
    try:
        running = Local(state, env)
        _wait_healthy(running, proc)
        yield running
    finally:
        _stop(proc)


def _storm(local: Local, vms: int, customers: int) -> subprocess.Popen[str]:
    log = open(local.state.parent / f"simulate-{customers}.out", "w")  # noqa: SIM115 - the child holds it
    return subprocess.Popen([*SIMULATE, "--vms", str(vms), "--customers", str(customers),
                             "--timeout", str(STORM_TIMEOUT)],
                            env={**local.env, "COLUMNS": "160"}, cwd=local.state.parent,
                            stdout=log, stderr=subprocess.STDOUT, text=True)


def _wait_registering(local: Local, expected: int, timeout: float = 300) -> None:
    """Until the storm's VMs exist and some are talking to the API."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            states = Counter(v["state"] for v in local.vms())
        except httpx.HTTPError:
            states = Counter()
        if sum(states.values()) >= expected and states["booting"] < sum(states.values()):
            return
        time.sleep(1)
    raise AssertionError("the storm's VMs never started registering")


def _finish(storm: subprocess.Popen[str]) -> float:
    started = time.monotonic()
    storm.wait(timeout=STORM_TIMEOUT + 120)
    return time.monotonic() - started


def audit(local: Local, before: set[str], settle: float = 180) -> dict[str, Any]:
    """Every invariant the storms must keep, read from the local AWS and the fleet host: for the
    storm's VMs (those not in ``before``); duplicates over everything."""
    every = local.vms()
    vms = [v for v in every if v["name"] not in before]
    org = local.aws("organizations")
    serving: dict[tuple[str, str], list[str]] = {}
    for page in org.get_paginator("list_accounts").paginate():
        for account in page["Accounts"]:
            tags = {t["Key"]: t["Value"] for t in org.list_tags_for_resource(ResourceId=account["Id"])["Tags"]}
            if TAG_CLOUD_ACCOUNT in tags:
                serving.setdefault((tags[TAG_PROVIDER], tags[TAG_CLOUD_ACCOUNT]), []).append(account["Id"])
    online = {v["name"] for v in every if v["state"] == "agent online"}
    deadline = time.monotonic() + settle
    while True:  # an enrollment deletes its used activation just after its agent is online
        leftovers, instances = Counter(), Counter()
        for accounts in serving.values():
            for account_id in accounts:
                sts = local.aws("sts")
                creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
                                        RoleSessionName="chaos-audit")["Credentials"]
                session = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                                        aws_secret_access_key=creds["SecretAccessKey"],
                                        aws_session_token=creds["SessionToken"])
                ssm = local.aws("ssm", session)
                for page in ssm.get_paginator("describe_activations").paginate():
                    leftovers.update(a.get("DefaultInstanceName", "?") for a in page["ActivationList"])
                for page in ssm.get_paginator("describe_instance_information").paginate():
                    instances.update(i["ComputerName"] for i in page["InstanceInformationList"]
                                     if i.get("ResourceType") == "ManagedInstance")
        # Activations of VMs that failed stay until their enrollment times out: reported, not awaited.
        if not set(leftovers) & online or time.monotonic() > deadline:
            break
        time.sleep(5)
    online_hybrid = [v for v in every if v["provider"] != "aws" and v["state"] == "agent online"]
    states = Counter(v["state"] for v in vms)
    return {
        "vms": len(vms),
        "enrolled": states["agent online"],
        "failed": sorted({v["reason"][:160] for v in vms if v["state"] == "failed"}),
        "not_finished": sum(n for s, n in states.items() if s not in ("agent online", "failed")),
        "cloud_accounts": len(serving),
        "duplicate_systems_accounts": {f"{p}/{a}": ids for (p, a), ids in serving.items() if len(ids) > 1},
        "online_hybrid_vms_all_storms": len(online_hybrid),
        "managed_instances": sum(instances.values()),
        "vms_with_several_instances": sorted(n for n, c in instances.items() if c > 1),
        "online_vms_without_instance": sorted(v["name"] for v in online_hybrid if instances[v["name"]] == 0),
        "leftover_activations": sum(n for name, n in leftovers.items() if name not in before),
        "leftover_activations_of_earlier_storms": sum(n for name, n in leftovers.items() if name in before),
    }


def _report(title: str, figures: dict[str, Any]) -> None:
    print(f"\n=== chaos: {title} ===")
    for key, value in figures.items():
        print(f"  {key:>28}: {value}")


def _assert_kept(figures: dict[str, Any]) -> None:
    assert figures["enrolled"] == figures["vms"], figures
    assert figures["duplicate_systems_accounts"] == {}, figures
    assert figures["vms_with_several_instances"] == [] and figures["online_vms_without_instance"] == [], figures
    assert figures["managed_instances"] == figures["online_hybrid_vms_all_storms"], figures
    assert figures["leftover_activations"] == 0, figures


def _names(local: Local) -> set[str]:
    return {v["name"] for v in local.vms()}


def test_sigkill_each_worker_role_and_the_api_mid_storm(local: Local) -> None:
    before = _names(local)
    started = time.monotonic()
    storm = _storm(local, VMS, customers=3)
    _wait_registering(local, len(before) + VMS)
    kills = []
    for name in ROLES:
        pid = local.pid(name)
        os.kill(pid, signal.SIGKILL)
        back = local.wait_restarted(name, pid)
        kills.append(f"{name} at {time.monotonic() - started:.0f}s (back in {back:.0f}s)")
        time.sleep(4)
    waited = _finish(storm)
    figures = {"storm_seconds": round(time.monotonic() - started), "killed": kills,
               "simulate_exit": storm.returncode, "waited_after_kills": round(waited), **audit(local, before)}
    _report(f"SIGKILL of every worker role and the API during {VMS} registrations", figures)
    _assert_kept(figures)


def test_temporal_restart_mid_storm(local: Local) -> None:
    before = _names(local)
    started = time.monotonic()
    storm = _storm(local, VMS, customers=5)
    _wait_registering(local, len(before) + VMS)
    time.sleep(5)
    pid = local.pid("temporal")
    os.kill(pid, signal.SIGTERM)
    back = local.wait_restarted("temporal", pid)
    waited = _finish(storm)
    figures = {"storm_seconds": round(time.monotonic() - started), "temporal_back_after_s": round(back),
               "simulate_exit": storm.returncode, "waited_after_restart": round(waited), **audit(local, before)}
    _report(f"Temporal dev server stopped and restarted during {VMS} registrations", figures)
    _assert_kept(figures)


def test_throttling_and_latency_mid_storm(local: Local) -> None:
    before = _names(local)
    rules = [{"service": s, "throttle_rate": 0.2, "latency_ms": 50} for s in CONTROL_PLANE]
    rules += [{"service": "ssm", "action": a, "throttle_rate": 0.2, "latency_ms": 50} for a in SSM_CONTROL_ACTIONS]
    started = time.monotonic()
    for rule in rules:
        local.faults("POST", rule)
    try:
        storm = _storm(local, VMS, customers=7)
        _wait_registering(local, len(before) + VMS)
        waited = _finish(storm)
    finally:
        local.faults("DELETE")
    figures = {"storm_seconds": round(time.monotonic() - started), "throttled_share": 0.2, "latency_ms": 50,
               "simulate_exit": storm.returncode, "waited": round(waited), **audit(local, before)}
    _report(f"20% throttling and 50 ms latency on the AWS control plane during {VMS} registrations", figures)
    _assert_kept(figures)

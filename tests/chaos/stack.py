"""The running local default (``fleetpatch up``) as the fault tests drive it: its processes, storms
of ``fleetpatch simulate`` registrations, and the audit of every invariant from the systems of
record (the local AWS through boto3, the fleet host)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import httpx

from contracts.enrollment import TAG_CLOUD_ACCOUNT, TAG_PROVIDER
from localclouds.aws import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from tests.integration.test_up import _env, _start, _stop

#: VMs of the SIGKILL storm: the issue's size (four clouds, several new customers)
VMS = int(os.environ.get("FLEETPATCH_CHAOS_VMS", "100"))
#: VMs of the Temporal-restart and throttling storms (smaller, to keep ``make chaos`` bounded)
OTHER_VMS = int(os.environ.get("FLEETPATCH_CHAOS_OTHER_VMS", "40"))
STORM_TIMEOUT = float(os.environ.get("FLEETPATCH_CHAOS_TIMEOUT", "900"))
SIMULATE = [sys.executable, "-c", "import typer; from clients.cli.simulate_cmd import simulate; typer.run(simulate)"]


class Local:
    """The running local default, read from its local.json."""

    def __init__(self, state: Path, env: dict[str, str]) -> None:
        self.state, self.env = state, env
        self.proc: subprocess.Popen[bytes] | None = None

    # --- the stack -------------------------------------------------------------------------

    def start(self) -> float:
        started = time.monotonic()
        self.proc = _start(self.state, self.env)
        self.wait_healthy()
        return time.monotonic() - started

    def stop(self) -> float:
        started = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            _stop(self.proc)
        self.proc = None
        return time.monotonic() - started

    def wait_healthy(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, "fleetpatch up exited early"
            try:
                doc = self.doc
                urls = (doc["api"] + "/healthz", doc["fleet"]["url"] + "/vms", doc["aws"] + "/__fleetpatch/health")
                if doc.get("running") and all(httpx.get(url, timeout=2).status_code == 200 for url in urls):
                    return
            except (OSError, ValueError, KeyError, httpx.HTTPError):
                pass
            time.sleep(1)
        raise AssertionError("fleetpatch up did not become healthy")

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads((self.state / "local.json").read_text())

    def pid(self, name: str) -> int:
        return int(self.doc["processes"][name])

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL, timeout: float = 90) -> float:
        """Kill one supervised process; the seconds until the supervisor restarted it."""
        old = self.pid(name)
        os.kill(old, sig)
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            pid = self.doc["processes"].get(name)
            if pid and pid != old:
                return time.monotonic() - started
            time.sleep(0.3)
        raise AssertionError(f"{name} was not restarted")

    # --- reading it ------------------------------------------------------------------------

    def vms(self, patience: float = 60) -> list[dict[str, Any]]:
        """The fleet's VMs (a fleet host busy with a storm may drop a connection: asked again)."""
        deadline = time.monotonic() + patience
        while True:
            try:
                return httpx.get(f"{self.doc['fleet']['url']}/vms", timeout=30).json()["vms"]
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def names(self) -> set[str]:
        return {v["name"] for v in self.vms()}

    def aws(self, service: str, session: boto3.Session | None = None) -> Any:
        session = session or boto3.Session(aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)
        return session.client(service, endpoint_url=self.doc["aws"], region_name=REGION)

    def in_account(self, service: str, account_id: str) -> Any:
        creds = self.aws("sts").assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
                                            RoleSessionName="chaos-audit")["Credentials"]
        session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                aws_session_token=creds["SessionToken"])
        return self.aws(service, session)

    def faults(self, method: str, rule: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        answer = httpx.request(method, f"{self.doc['aws']}/__fleetpatch/faults", json=rule, timeout=10)
        answer.raise_for_status()
        return answer.json().get("rules", [])

    def serving(self) -> dict[tuple[str, str], list[str]]:
        """Systems accounts by the (provider, cloud account) they serve, from Organizations' tags."""
        org = self.aws("organizations")
        serving: dict[tuple[str, str], list[str]] = {}
        for page in org.get_paginator("list_accounts").paginate():
            for account in page["Accounts"]:
                tags = {t["Key"]: t["Value"] for t in org.list_tags_for_resource(ResourceId=account["Id"])["Tags"]}
                if TAG_CLOUD_ACCOUNT in tags:
                    serving.setdefault((tags[TAG_PROVIDER], tags[TAG_CLOUD_ACCOUNT]), []).append(account["Id"])
        return serving


def storm(local: Local, vms: int, customers: int, name: str = "storm") -> subprocess.Popen[str]:
    log = open(local.state.parent / f"simulate-{name}.out", "w")  # noqa: SIM115 - the child holds it
    return subprocess.Popen([*SIMULATE, "--vms", str(vms), "--customers", str(customers), "--timeout", str(STORM_TIMEOUT)],
                            env={**local.env, "COLUMNS": "160"}, cwd=local.state.parent,
                            stdout=log, stderr=subprocess.STDOUT, text=True)


def wait_registering(local: Local, before: set[str], vms: int, share: float = 0.0, timeout: float = 300) -> None:
    """Until the storm's ``vms`` VMs (those not in ``before``) exist and some (more than ``share``
    of them) are past booting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            states = Counter(v["state"] for v in local.vms() if v["name"] not in before)
        except httpx.HTTPError:
            states = Counter()
        total = sum(states.values())
        if total >= vms and total - states["booting"] > share * total:
            return
        time.sleep(0.5)
    raise AssertionError("the storm's VMs never started registering")


def finish(proc: subprocess.Popen[str]) -> float:
    started = time.monotonic()
    proc.wait(timeout=STORM_TIMEOUT + 120)
    return time.monotonic() - started


def _hybrid_state(local: Local, serving: dict[tuple[str, str], list[str]]) -> tuple[Counter[str], Counter[str], set[str]]:
    """Leftover activations and managed instances by VM name, and the activations instances used."""
    leftovers: Counter[str] = Counter()
    instances: Counter[str] = Counter()
    used: set[str] = set()
    for accounts in serving.values():
        for account_id in accounts:
            ssm = local.in_account("ssm", account_id)
            for page in ssm.get_paginator("describe_activations").paginate():
                leftovers.update(a.get("DefaultInstanceName", "?") for a in page["ActivationList"])
            for page in ssm.get_paginator("describe_instance_information").paginate():
                for info in page["InstanceInformationList"]:
                    if info.get("ResourceType") == "ManagedInstance":
                        # An agent that registered but has not reported yet has no ComputerName.
                        instances[info.get("ComputerName", info["InstanceId"])] += 1
                        used.add(info.get("ActivationId", ""))
    return leftovers, instances, used


def audit(local: Local, before: set[str], settle: float = 120) -> dict[str, Any]:
    """Every invariant the storms must keep, read from the local AWS and the fleet host: for the
    storm's VMs (those not in ``before``); duplicates over everything."""
    every = local.vms()
    vms = [v for v in every if v["name"] not in before]
    serving = local.serving()
    online = {v["name"] for v in every if v["state"] == "agent online"}
    deadline = time.monotonic() + settle
    while True:  # an enrollment deletes its used activation just after its agent is online
        leftovers, instances, used = _hybrid_state(local, serving)
        # Activations of VMs that failed stay until their enrollment times out: reported, not awaited.
        if not set(leftovers) & online or time.monotonic() > deadline:
            break
        time.sleep(2)
    online_hybrid = [v for v in every if v["provider"] != "aws" and v["state"] == "agent online"]
    states = Counter(v["state"] for v in vms)
    return {
        "vms": len(vms),
        "by_cloud": dict(sorted(Counter(v["provider"] for v in vms).items())),
        "customers": len({v["customer"] for v in vms}),
        "enrolled": states["agent online"],
        "failed": sorted({v["reason"][:160] for v in vms if v["state"] == "failed"}),
        "not_finished": sum(n for s, n in states.items() if s not in ("agent online", "failed")),
        "cloud_accounts": len(serving),
        "systems_accounts": sum(len(ids) for ids in serving.values()),
        "duplicate_systems_accounts": {f"{p}/{a}": ids for (p, a), ids in serving.items() if len(ids) > 1},
        "online_hybrid_vms_all_storms": len(online_hybrid),
        "managed_instances": sum(instances.values()),
        "activations_used_by_instances": len(used - {""}),
        "vms_with_several_instances": sorted(n for n, c in instances.items() if c > 1),
        "online_vms_without_instance": sorted(v["name"] for v in online_hybrid if instances[v["name"]] == 0),
        "leftover_activations": sum(n for name, n in leftovers.items() if name not in before),
        "leftover_activations_of_earlier_storms": sum(n for name, n in leftovers.items() if name in before),
    }


def report(title: str, figures: dict[str, Any]) -> None:
    print(f"\n=== chaos: {title} ===")
    for key, value in figures.items():
        print(f"  {key:>38}: {value}")


def assert_kept(figures: dict[str, Any]) -> None:
    assert figures["enrolled"] == figures["vms"], figures
    assert figures["duplicate_systems_accounts"] == {}, figures
    assert figures["vms_with_several_instances"] == [] and figures["online_vms_without_instance"] == [], figures
    assert figures["managed_instances"] == figures["online_hybrid_vms_all_storms"], figures
    assert figures["activations_used_by_instances"] == figures["managed_instances"], figures
    assert figures["leftover_activations"] == 0, figures


#: simulated VMs that run their startup script at once (real VMs of a storm all boot together)
BOOT_CONCURRENCY = int(os.environ.get("FLEETPATCH_CHAOS_BOOT_CONCURRENCY", "40"))


def new_stack(root: Path) -> Local:
    """A local default of its own (state dir, ports), not started yet."""
    state = root / ".fleetpatch"
    env = _env(state)
    env["FLEETPATCH_LOCAL__FLEET_BOOT_CONCURRENCY"] = str(BOOT_CONCURRENCY)
    return Local(state, env)

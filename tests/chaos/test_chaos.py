"""Fault tests (``make chaos``): the local default (``fleetpatch up``, real processes) under storms
of registrations over four clouds while processes die, Temporal restarts and AWS throttles.

Each storm is ``fleetpatch simulate`` booting VMs that run the real startup script; each brings
new customers (so new systems accounts are vended during it). After each storm the invariants are
audited from the systems of record (``tests/chaos/stack.py``): every VM enrolled, one systems
account per customer cloud account, one managed instance (and one activation) per hybrid VM, no
activation left behind. Each test prints its figures.

Sizes: ``FLEETPATCH_CHAOS_VMS`` VMs in the SIGKILL storm (default 100, the issue's size),
``FLEETPATCH_CHAOS_OTHER_VMS`` in the Temporal-restart and throttling storms (default 40).
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.chaos.stack import OTHER_VMS, VMS, Local, assert_kept, audit, finish, report, storm, wait_registering

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

ROLES = ("worker-aws", "worker-orchestrator", "api", "worker-gcp", "worker-azure", "worker-vmware", "worker-ec2")
#: what the product's aws and ec2 workers call (the simulated agents' own calls are left alone,
#: and so is the simulated customers' RunInstances)
CONTROL_PLANE = ("organizations", "iam", "sts", "s3")
EC2_ACTIONS = ("DescribeInstances", "CreateTags", "DeleteTags")
SSM_CONTROL_ACTIONS = ("CreateActivation", "DeleteActivation", "DescribeActivations", "DescribeInstanceInformation",
                       "AddTagsToResource", "ListTagsForResource", "GetParameter", "PutParameter",
                       "CreatePatchBaseline", "RegisterPatchBaselineForPatchGroup", "CreateAssociation")


def test_sigkill_each_worker_role_and_the_api_mid_storm(local: Local) -> None:
    before = local.names()
    started = time.monotonic()
    proc = storm(local, VMS, customers=3, name="kills")
    wait_registering(local, before, VMS)
    kills = []
    for name in ROLES:
        back = local.kill(name)
        kills.append(f"{name} at {time.monotonic() - started:.0f}s (back in {back:.0f}s)")
        time.sleep(5)
    waited = finish(proc)
    figures = {"storm_seconds": round(time.monotonic() - started), "killed": kills,
               "simulate_exit": proc.returncode, "waited_after_kills": round(waited), **audit(local, before)}
    report(f"SIGKILL of every worker role and the API during {VMS} registrations", figures)
    assert_kept(figures)


def test_temporal_restart_mid_storm(local: Local) -> None:
    before = local.names()
    started = time.monotonic()
    proc = storm(local, OTHER_VMS, customers=5, name="temporal")
    wait_registering(local, before, OTHER_VMS, share=0.1)
    back = local.kill("temporal", signal.SIGTERM)
    waited = finish(proc)
    figures = {"storm_seconds": round(time.monotonic() - started), "temporal_back_after_s": round(back),
               "simulate_exit": proc.returncode, "waited_after_restart": round(waited), **audit(local, before)}
    report(f"Temporal dev server stopped and restarted during {OTHER_VMS} registrations", figures)
    assert_kept(figures)


def test_throttling_and_latency_mid_storm(local: Local) -> None:
    before = local.names()
    rules = [{"service": s, "throttle_rate": 0.2, "latency_ms": 50} for s in CONTROL_PLANE]
    rules += [{"service": "ssm", "action": a, "throttle_rate": 0.2, "latency_ms": 50} for a in SSM_CONTROL_ACTIONS]
    rules += [{"service": "ec2", "action": a, "throttle_rate": 0.2, "latency_ms": 50} for a in EC2_ACTIONS]
    started = time.monotonic()
    for rule in rules:
        local.faults("POST", rule)
    try:
        proc = storm(local, OTHER_VMS, customers=7, name="throttled")
        wait_registering(local, before, OTHER_VMS)
        waited = finish(proc)
    finally:
        local.faults("DELETE")
    figures = {"storm_seconds": round(time.monotonic() - started), "throttled_share": 0.2, "latency_ms": 50,
               "simulate_exit": proc.returncode, "waited": round(waited), **audit(local, before)}
    report(f"20% throttling and 50 ms latency on the AWS control plane during {OTHER_VMS} registrations", figures)
    assert_kept(figures)

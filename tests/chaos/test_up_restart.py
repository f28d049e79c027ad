"""The issue's operator check: stop and restart the local default (``fleetpatch up``, as ``make run``)
after ``fleetpatch simulate``; ``fleetpatch simulate`` again enrolls its new VMs into the same,
listed systems accounts, and the earlier VMs are still managed instances. Figures printed.

It stops and restarts the folder's shared stack, so it runs last (file order).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.chaos.stack import Local, assert_kept, audit, finish, report, storm

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

VMS = 8


def _instances(local: Local) -> dict[str, tuple[str, str]]:
    """Managed (hybrid) instance id -> (systems account, ping status), over every listed account."""
    found = {}
    for accounts in local.serving().values():
        for account_id in accounts:
            ssm = local.in_account("ssm", account_id)
            for page in ssm.get_paginator("describe_instance_information").paginate():
                found.update({i["InstanceId"]: (account_id, i.get("PingStatus", "")) for i in page["InstanceInformationList"]
                              if i.get("ResourceType") == "ManagedInstance"})
    return found


def _simulate(local: Local, name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    before = local.names()
    proc = storm(local, VMS, customers=2, name=name)
    finish(proc)
    figures = {"simulate_exit": proc.returncode, **audit(local, before)}
    return [v for v in local.vms() if v["name"] not in before], figures


def test_restart_after_simulate_keeps_accounts_and_instances(local: Local) -> None:
    first, figures = _simulate(local, "before-restart")
    report(f"simulate {VMS} VMs before the restart", figures)
    assert_kept(figures)
    serving_before = local.serving()
    instances_before = _instances(local)
    earlier = {v["managed_instance_id"]: v["name"] for v in first if v["provider"] != "aws"}

    stopped = local.stop()
    started = local.start()
    instances_after = _instances(local)
    second, figures = _simulate(local, "after-restart")
    serving_after = local.serving()
    instances_now = _instances(local)
    new_in = {v["name"]: instances_now.get(v["managed_instance_id"], ("?", ""))[0] for v in second if v["provider"] != "aws"}
    in_earlier_accounts = [v["name"] for v in second if (v["provider"], v["cloud_account"]) in serving_before]
    figures.update({
        "stopped_in_s": round(stopped), "healthy_again_in_s": round(started),
        "systems_accounts_before": sum(map(len, serving_before.values())),
        "systems_accounts_after": sum(map(len, serving_after.values())),
        "earlier_vms_still_managed": sum(1 for mi in earlier if mi in instances_after),
        "earlier_hybrid_vms": len(earlier),
        "new_vms_accounts": new_in,
        "new_vms_of_cloud_accounts_served_before": len(in_earlier_accounts),
    })
    report(f"fleetpatch up stopped and started again, then simulate {VMS} VMs", figures)
    assert_kept(figures)
    # The earlier VMs are still managed instances, in the accounts they were in.
    assert all(instances_after.get(mi, ("", ""))[0] == instances_before[mi][0] for mi in earlier), figures
    # The new VMs enrolled into the same, listed systems accounts: nothing vended twice, and each
    # new VM's account is the one Organizations lists for its cloud account.
    for key, accounts in serving_before.items():
        assert serving_after[key] == accounts, figures
    expected = {v["name"]: serving_after[(v["provider"], v["cloud_account"])][0] for v in second if v["provider"] != "aws"}
    assert new_in == expected, figures
    assert in_earlier_accounts, figures  # the same customers' cloud accounts as before the restart

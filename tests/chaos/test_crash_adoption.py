"""A crash after CreateAccount or CreateActivation returned and before the activity completed: the
retry adopts what exists (issue 9, Deliver 4).

The local AWS holds the call's answer back after the call took effect (fault rule ``hold_ms``);
the aws worker is SIGKILLed meanwhile, so the activity never learns that its call succeeded. The
supervisor restarts the worker, the activity is retried (after its heartbeat timeout), and:
- CreateAccount: the retry's request fails with EMAIL_ALREADY_EXISTS and the workflow adopts the
  account the first call made: one systems account;
- CreateActivation: the retry finds the activation its first attempt made (same idempotency key),
  deletes it (its code was never read) and creates the one the VM gets: one activation used, none
  left behind.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest

from contracts import ids, taskqueues
from contracts.enrollment import SystemsAccount, SystemsAccountInput
from contracts.names import WorkflowName
from contracts.providers import Provider, WorkerRole
from localclouds.fleet.customers import customer
from tests.chaos.stack import Local, assert_kept, audit, finish, report, storm, wait_registering
from tests.integration.test_up import _client

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

HOLD_MS = 30000


def _held(local: Local, action: str, timeout: float = 120) -> float:
    """Until the held call came in (its one-shot rule is consumed); then it takes effect at once.
    Returns the monotonic time the call was seen."""
    started = time.monotonic()
    while any(r["action"] == action for r in local.faults("GET")):
        assert time.monotonic() - started < timeout, f"no {action} call came"
        time.sleep(0.2)
    seen = time.monotonic()
    time.sleep(1.0)  # the action runs right after the rule matched; its answer is held for HOLD_MS
    return seen


def _requests_for(local: Local, cloud_account: str) -> list[dict]:
    org = local.aws("organizations")
    found = []
    for page in org.get_paginator("list_create_account_status").paginate():
        found += [s for s in page["CreateAccountStatuses"] if cloud_account in s.get("AccountName", "")]
    return found


async def test_crash_after_create_account_returned_adopts_the_account(local: Local) -> None:
    client = await _client(local.doc)
    cloud_account = f"crash-{uuid.uuid4().hex[:8]}"
    local.faults("POST", {"service": "organizations", "action": "CreateAccount", "hold_ms": HOLD_MS, "count": 1})
    started = time.monotonic()
    handle = await client.start_workflow(
        WorkflowName.SYSTEMS_ACCOUNT,
        SystemsAccountInput(provider=Provider.GCP, cloud_account=cloud_account, customer="crashco"),
        id=ids.systems_account(Provider.GCP, cloud_account),
        task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, ""),
        result_type=SystemsAccount,
        execution_timeout=timedelta(minutes=10),
    )
    seen = await asyncio.to_thread(_held, local, "CreateAccount")
    first = await asyncio.to_thread(_requests_for, local, cloud_account)
    back = await asyncio.to_thread(local.kill, "worker-aws")
    killed_while_held = time.monotonic() - back - seen < HOLD_MS / 1000
    account: SystemsAccount = await asyncio.wait_for(handle.result(), timeout=300)
    requests = await asyncio.to_thread(_requests_for, local, cloud_account)
    serving = (await asyncio.to_thread(local.serving)).get(("gcp", cloud_account), [])
    figures = {
        "seconds": round(time.monotonic() - started), "create_account_called_after_s": round(seen - started, 1),
        "killed_while_the_answer_was_held": killed_while_held,
        "worker_aws_back_in_s": round(back, 1), "requests_when_killed": len(first),
        "create_account_requests": sorted(r["State"] + ("/" + r["FailureReason"] if r.get("FailureReason") else "")
                                          for r in requests),
        "systems_accounts": serving, "adopted": account.adopted, "workflow_answer": account.account_id,
    }
    report("worker-aws SIGKILLed while CreateAccount's answer was held", figures)
    assert killed_while_held and len(first) == 1, figures  # the first call took effect, its answer never came
    assert len(serving) == 1 and account.account_id == serving[0], figures
    # The retry asked again, was refused (EMAIL_ALREADY_EXISTS) and adopted the first account.
    assert figures["create_account_requests"] == ["FAILED/EMAIL_ALREADY_EXISTS", "SUCCEEDED"], figures
    assert account.adopted, figures


def _activations_in(local: Local, accounts: list[str]) -> tuple[set[str], set[str]]:
    """(activation ids that exist, activation ids managed instances registered with) in ``accounts``."""
    existing, used = set(), set()
    for account_id in accounts:
        ssm = local.in_account("ssm", account_id)
        for page in ssm.get_paginator("describe_activations").paginate():
            existing.update(a["ActivationId"] for a in page["ActivationList"])
        for page in ssm.get_paginator("describe_instance_information").paginate():
            used.update(i.get("ActivationId", "") for i in page["InstanceInformationList"])
    return existing, used - {""}


def _acme_accounts(local: Local) -> list[str]:
    """The systems accounts of the first demo customer's hybrid clouds (it owns the vCenter)."""
    acme = customer(0)
    wanted = {("gcp", acme.gcp_project), ("azure", acme.azure_subscription)}
    return sorted({a for (provider, cloud), ids in local.serving().items()
                   if (provider, cloud) in wanted or provider == "vmware" for a in ids})


def test_crash_after_create_activation_returned_adopts_the_activation(local: Local) -> None:
    before = local.names()
    accounts = _acme_accounts(local)  # known before the storm, so they are read at once after the kill
    local.faults("POST", {"service": "ssm", "action": "CreateActivation", "hold_ms": HOLD_MS, "count": 1})
    started = time.monotonic()
    proc = storm(local, 3, customers=1, name="activation-crash")  # at least two hybrid VMs of acme
    wait_registering(local, before, 3)
    seen = _held(local, "CreateActivation")
    # The activations of acme's systems accounts while the answer is held (the held one among
    # them), then the kill, still within the hold.
    accounts = accounts or _acme_accounts(local)  # run alone: vended by this storm
    at_kill, _ = _activations_in(local, accounts)
    back = local.kill("worker-aws")
    killed_while_held = time.monotonic() - back - seen < HOLD_MS / 1000
    waited = finish(proc)
    figures = {"storm_seconds": round(time.monotonic() - started), "create_activation_called_after_s": round(seen - started, 1),
               "killed_while_the_answer_was_held": killed_while_held, "worker_aws_back_in_s": round(back, 1),
               "simulate_exit": proc.returncode, "waited_after_kill": round(waited), **audit(local, before)}
    after, used = _activations_in(local, accounts)  # after the audit let the enrollments finish
    figures.update({"activations_at_kill": len(at_kill), "never_used_and_deleted": len(at_kill - used - after),
                    "unused_still_there": sorted((at_kill - used) & after)})
    report("worker-aws SIGKILLed while CreateActivation's answer was held", figures)
    assert killed_while_held, figures
    # The held activation (its code never reached anyone) was found by the retry and deleted; the
    # VM got the retry's one. Nothing is left over, one activation per managed instance.
    assert figures["never_used_and_deleted"] >= 1 and figures["unused_still_there"] == [], figures
    assert_kept(figures)

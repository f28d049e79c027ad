"""Steps of a customer-wide ring, for the PatchWindow workflow (decisions: ``workflows.ring_gate``).

- An early (and an on-time) run marks itself running in its account's ring record when it opens, so a later ring
  of the same customer in another account (another time zone) waits for it.
- A later ring reads the earlier ring's last run in every systems account of the customer and,
  while some still run, waits (up to ``ring_wait_minutes``, never past its cutoff; an operator's
  release ends the wait).
- The train it installs is the customer's: built from the earlier runs' trains and copied into
  its own account's bucket (where its managed instances read the InstallOverrideLists).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.models import ActivityName
    from contracts.patching import (
        CustomerRingQuery,
        CustomerRings,
        CustomerTrainInput,
        PatchTrain,
        PatchWindowInput,
        RecordRingRunInput,
        RingAccount,
        RingRunRecord,
        WindowOutcome,
        WindowSummary,
        earlier_ring,
    )
    from contracts.providers import PatchGroup, WorkerRole
    from workflows import options
    from workflows.calls import Calls, wait_until
    from workflows.ring_gate import customer_train_id, reusable_train, still_running, train_sources

#: The ``workflow.patched`` id of customer-wide rings (histories recorded before keep replaying).
CUSTOMER_RINGS = "customer-rings"
#: The ``workflow.patched`` id of on-time runs marking themselves running (late waits for them).
ON_TIME_MARKS_RUNNING = "on-time-marks-running"


def marks_running(group: PatchGroup) -> bool:
    """Whether this run marks itself running first: every ring a later ring waits for."""
    if group is PatchGroup.EARLY:
        return workflow.patched(CUSTOMER_RINGS)
    return group is PatchGroup.ON_TIME and workflow.patched(ON_TIME_MARKS_RUNNING)


async def mark_running(calls: Calls, inp: PatchWindowInput, summary: WindowSummary) -> None:
    """This run's record says it is going, until its end replaces it."""
    info = workflow.info()
    record = RingRunRecord(
        group=inp.group, workflow_id=info.workflow_id, run_id=info.run_id, started=summary.started,
        finished=summary.started, outcome=WindowOutcome.RUNNING,
    )
    await calls.activity(WorkerRole.AWS, ActivityName.RECORD_RING_RUN,
                         RecordRingRunInput(account=inp.account, record=record, summary=summary), None, options.SSM_CALL)


async def read_rings(calls: Calls, inp: PatchWindowInput) -> list[RingAccount]:
    earlier = earlier_ring(inp.group)
    assert earlier is not None
    query = CustomerRingQuery(customer=inp.customer, group=earlier, account=inp.account, scope=inp.config.ring_scope)
    found = await calls.activity(WorkerRole.AWS, ActivityName.READ_CUSTOMER_RINGS, query, CustomerRings,
                                 options.CUSTOMER_RINGS_CALL)
    return found.accounts


async def wait_for_earlier(
    calls: Calls, inp: PatchWindowInput, cutoff_at: datetime, released: Callable[[], bool],
) -> tuple[list[RingAccount], int]:
    """The earlier ring's last runs once none is running any more, or when the wait is over;
    and how many minutes this run waited."""
    opened = workflow.now()
    deadline = min(opened + timedelta(minutes=inp.config.ring_wait_minutes), cutoff_at)
    rings = await read_rings(calls, inp)
    while still_running(rings) and not released() and workflow.now() < deadline:
        await wait_until(released, max(options.MIN_WAIT, min(options.RING_WAIT_POLL, deadline - workflow.now())))
        rings = await read_rings(calls, inp)
    return rings, int((workflow.now() - opened).total_seconds() // 60)


async def customer_train(calls: Calls, inp: PatchWindowInput, rings: list[RingAccount]) -> PatchTrain | None:
    """The train this ring installs, in this account's bucket (None: the earlier ring recorded none)."""
    sources = train_sources(rings)
    if not sources:
        return None
    own = reusable_train(sources, inp.account.account_id)
    if own is not None:
        return own
    copy = CustomerTrainInput(account=inp.account, train_id=customer_train_id(sources),
                              recorded_by=workflow.info().workflow_id, sources=sources)
    return await calls.activity(WorkerRole.AWS, ActivityName.COPY_CUSTOMER_TRAIN, copy, PatchTrain,
                                options.CUSTOMER_RINGS_CALL)

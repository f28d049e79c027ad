"""Pure decisions of a customer-wide ring: who is still running, the gate, which train to use.

A later ring (on-time, late) judges the earlier ring of the whole customer: the last run of that
ring in every systems account of the customer, on every cloud (``RingAccount`` rows). With ring
scope ``account`` the rows hold the window's own account alone; the rules are the same.

- Order: while the earlier ring still runs in some account, the later ring waits (up to
  ``ring_wait_minutes``, never past its cutoff), then holds naming those runs.
- The gate: the earlier ring's runs together must reach the success threshold (succeeded over
  targets, summed over the accounts); a run that was held or refused holds the ring. The reason
  names every account. An operator releases the ring by naming the runs that hold it.
- The train: one train for the customer, built from the trains the earlier ring's runs
  recorded; when every source carries the same train and the window's own account holds a copy
  already, that copy is used as it is.

Deterministic functions only: the PatchWindow workflow calls them, tests call them directly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from contracts.patching import PatchTrain, RingAccount, WindowOutcome, earlier_ring
from contracts.providers import PatchGroup


@dataclass
class RingGate:
    holds: bool
    reason: str
    #: The earlier runs that hold the ring (what a release must name); ["none"] when none ran.
    blamed: list[str] = field(default_factory=list)


def still_running(rings: list[RingAccount]) -> list[RingAccount]:
    """Accounts whose earlier-ring run has started and not ended."""
    return [r for r in rings if r.record is not None and r.record.outcome is WindowOutcome.RUNNING]


def _who(ring: RingAccount) -> str:
    return ring.label or ring.account.account_id


def _detail(ring: RingAccount, earlier: str) -> str:
    record = ring.record
    if record is None:
        return f"{_who(ring)}: no {earlier} run"
    if record.outcome in (WindowOutcome.HELD, WindowOutcome.REFUSED, WindowOutcome.RUNNING):
        return f"{_who(ring)}: {record.outcome.value} ({record.workflow_id})"
    if not record.targets:
        return f"{_who(ring)}: no targets ({record.workflow_id})"
    return f"{_who(ring)}: {record.succeeded}/{record.targets} succeeded ({record.workflow_id})"


def judge_ring_gate(
    group: PatchGroup, rings: list[RingAccount], threshold: float, releases: list[str], *, customer: str = "",
    waited_minutes: int = 0,
) -> RingGate:
    """Hold ``group`` unless the earlier ring's runs of every account ended and, together,
    reached ``threshold``; a hold whose blamed runs an operator released lets the ring run."""
    earlier = earlier_ring(group)
    if earlier is None:
        return RingGate(False, "early is never gated")
    gate = _judge(earlier.value, rings, threshold, customer or "this account", waited_minutes)
    if gate.holds and gate.blamed and set(gate.blamed) <= set(releases):
        return RingGate(False, f"released by an operator: {gate.reason}", gate.blamed)
    return gate


def _judge(earlier: str, rings: list[RingAccount], threshold: float, whose: str, waited: int) -> RingGate:
    details = "; ".join(_detail(r, earlier) for r in sorted(rings, key=_who))
    recorded = [r for r in rings if r.record is not None]
    if not recorded:
        return RingGate(True, f"no {earlier} run is recorded for any account of {whose}", ["none"])
    running = still_running(rings)
    if running:
        return RingGate(
            True, f"the {earlier} ring of {whose} was still running after {waited} minutes of waiting ({details})",
            [r.record.workflow_id for r in running if r.record],
        )
    stuck = [r for r in recorded if r.record and r.record.outcome in (WindowOutcome.HELD, WindowOutcome.REFUSED)]
    if stuck:
        first = stuck[0].record
        assert first is not None
        why = f": {first.held_reason}" if first.held_reason else ""
        return RingGate(
            True, f"the {earlier} ring's last run in {_who(stuck[0])} ({first.workflow_id}) was {first.outcome.value} "
                  f"itself{why} ({details})",
            [r.record.workflow_id for r in stuck if r.record],
        )
    targets = sum(r.record.targets for r in recorded if r.record)
    succeeded = sum(r.record.succeeded for r in recorded if r.record)
    if targets == 0:
        return RingGate(False, f"the {earlier} ring of {whose} had no targets ({details})")
    rate = succeeded / targets
    if rate < threshold:
        below = [r.record.workflow_id for r in recorded
                 if r.record and r.record.targets and r.record.succeeded / r.record.targets < threshold]
        return RingGate(
            True, f"the {earlier} ring of {whose} succeeded on {rate:.1%} of {targets} instances, "
                  f"below the {threshold:.0%} threshold ({details})",
            below,
        )
    return RingGate(False, f"the {earlier} ring of {whose} succeeded on {rate:.1%} of {targets} instances ({details})")


# --- the train --------------------------------------------------------------------------------


def train_sources(rings: list[RingAccount]) -> list[RingAccount]:
    """Accounts whose earlier-ring run carries a train, in a stable order."""
    return sorted((r for r in rings if r.record is not None and r.record.train is not None),
                  key=lambda r: r.account.account_id)


def reusable_train(sources: list[RingAccount], account_id: str) -> PatchTrain | None:
    """The train to use as it is: every source carries the same train id and the window's own
    account holds it (one account, or a customer train copied here already)."""
    trains = [r.record.train for r in sources if r.record and r.record.train]
    if not trains or len({t.train_id for t in trains}) != 1:
        return None
    own = [r.record.train for r in sources if r.account.account_id == account_id and r.record and r.record.train]
    return own[0] if own else None


def customer_train_id(sources: list[RingAccount]) -> str:
    """One id in every account of the customer for the same source trains, so every copy of one
    customer train carries one id: the source's own id when they all carry one train, else a
    digest of their ids."""
    ids = sorted({r.record.train.train_id for r in sources if r.record and r.record.train})
    if len(ids) == 1:
        return ids[0]
    return "customer-" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:24]

"""Each ring's last and next window, with its promotion gate, for the dashboard (held rings first)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from temporalio.client import Client
from temporalio.service import RPCError

import scheduling as schedules
from scheduling.ensure import current_input
from contracts import search_attributes as sa
from contracts.patching import WindowOutcome, earlier_ring
from contracts.providers import PatchGroup
from estate.results import Scope

#: The dashboard shows at most this many windows (held first); the CLI and API list them all.
MAX_RINGS = 60


@dataclass
class Ring:
    account_id: str
    group: str
    customer: str
    when: str
    paused: bool
    last_run: str | None
    last_started: datetime | None
    last_outcome: str | None
    next_run: datetime | None
    gated_by: str | None  # the earlier ring whose last run must pass (None: early is never gated)
    ring_scope: str = "customer"  # "customer": released in every account of the customer together

    @property
    def customer_wide(self) -> bool:
        """Held rings of a customer-scoped window are released for the whole customer."""
        return self.ring_scope == "customer" and bool(self.customer)

    @property
    def held(self) -> bool:
        return self.last_outcome == WindowOutcome.HELD.value


async def _outcome(client: Client, workflow_id: str | None) -> str | None:
    if workflow_id is None:
        return None
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return None
    return described.typed_search_attributes.get(sa.WINDOW_OUTCOME)


async def rings(client: Client, scope: Scope) -> list[Ring]:
    """The scope's windows: a customer sees only its own customer's schedules."""
    views = await schedules.list_windows(client, customer=None if scope.admin else scope.customer)
    if not scope.admin:
        views = [v for v in views if v.customer == scope.customer]
    views = views[: MAX_RINGS * 2]
    lasts = [v.recent[-1] if v.recent else None for v in views]
    outcomes = await asyncio.gather(*(_outcome(client, last.workflow_id if last else None) for last in lasts))
    found = []
    for view, last, outcome in zip(views, lasts, outcomes, strict=True):
        earlier = earlier_ring(PatchGroup(view.group))
        found.append(Ring(
            account_id=view.account_id, group=view.group, customer=view.customer, when=view.when,
            paused=view.paused, last_run=last.workflow_id if last else None,
            last_started=last.started_at if last else None, last_outcome=outcome,
            next_run=view.next_runs[0] if view.next_runs else None,
            gated_by=earlier.value if earlier else None,
        ))
    found.sort(key=lambda r: (not r.held, r.customer, r.account_id))
    found = found[:MAX_RINGS]
    held = [r for r in found if r.held]
    for ring, scope_of_ring in zip(held, await asyncio.gather(*(_ring_scope(client, r) for r in held)), strict=True):
        ring.ring_scope = scope_of_ring
    return found


async def _ring_scope(client: Client, ring: Ring) -> str:
    """The window's ring scope, from the input its schedule starts runs with."""
    try:
        current = await current_input(client, await schedules.describe(client, ring.account_id, ring.group))
    except (RPCError, schedules.WindowNotFound):
        return "account"
    return current.config.ring_scope if current is not None else "account"

"""The dashboard's ring list: held rings first, a customer sees only its own schedules, and the
release form only for admins."""

from __future__ import annotations

from datetime import UTC, datetime

from clients.dashboard import rings
from estate.results import Scope
from scheduling import RunView, WindowView

T = datetime(2026, 11, 10, 2, tzinfo=UTC)


class _Described:
    def __init__(self, outcome: str | None) -> None:
        self.typed_search_attributes = {rings.sa.WINDOW_OUTCOME: outcome}


class _Handle:
    def __init__(self, outcome: str | None) -> None:
        self._outcome = outcome

    async def describe(self) -> _Described:
        return _Described(self._outcome)


class _Client:
    """Answers each run's WindowOutcome search attribute."""

    def __init__(self, outcomes: dict[str, str]) -> None:
        self.outcomes = outcomes

    def get_workflow_handle(self, workflow_id: str) -> _Handle:
        return _Handle(self.outcomes.get(workflow_id))


def _view(account: str, group: str, customer: str, last: str | None) -> WindowView:
    return WindowView(schedule_id=f"patch-window/{account}/{group}", account_id=account, group=group, customer=customer,
                      next_runs=[T], recent=[RunView(last, T)] if last else [])


async def test_held_rings_come_first_and_customers_see_their_own(monkeypatch) -> None:
    views = [_view("111111111111", "early", "acme", "w1"), _view("111111111111", "on-time", "acme", "w2"),
             _view("222222222222", "late", "globex", "w3"), _view("222222222222", "early", "globex", None)]
    asked: list[str | None] = []

    async def list_windows(client, *, account_id=None, customer=None):  # noqa: ANN001, ANN202
        asked.append(customer)
        return [v for v in views if customer is None or v.customer == customer]

    async def describe(client, account_id, group):  # noqa: ANN001, ANN202
        raise rings.schedules.WindowNotFound(f"patch-window/{account_id}/{group}")  # gone meanwhile

    monkeypatch.setattr(rings.schedules, "list_windows", list_windows)
    monkeypatch.setattr(rings.schedules, "describe", describe)
    client = _Client({"w1": "succeeded", "w2": "held", "w3": "held"})
    every = await rings.rings(client, Scope.everything())
    assert [(r.account_id, r.group) for r in every][:2] == [("111111111111", "on-time"), ("222222222222", "late")]
    assert all(r.held for r in every[:2]) and not any(r.held for r in every[2:])
    assert every[0].gated_by == "early" and every[2].gated_by is None and every[0].last_outcome == "held"
    assert not every[0].customer_wide  # its scope unknown: released in its own account only
    mine = await rings.rings(client, Scope.of_customer("globex"))
    assert asked[-1] == "globex" and {r.customer for r in mine} == {"globex"}


async def test_a_held_customer_scoped_ring_is_released_for_the_whole_customer(monkeypatch) -> None:
    """The window's own input says its ring scope: a customer-scoped held ring gets the form that
    releases it in every account of the customer; an account-scoped one keeps the per-account form."""
    from types import SimpleNamespace

    from clients.dashboard import pages
    from contracts.patch_config import window_config
    from contracts.providers import PatchGroup

    views = [_view("111111111111", "on-time", "acme corp", "w1"), _view("222222222222", "on-time", "globex", "w2")]
    scopes = {"111111111111": "customer", "222222222222": "account"}

    async def list_windows(client, *, account_id=None, customer=None):  # noqa: ANN001, ANN202
        return views

    async def describe(client, account_id, group):  # noqa: ANN001, ANN202
        return account_id

    async def current_input(client, account_id):  # noqa: ANN001, ANN202
        config = window_config(PatchGroup.ON_TIME)
        config.ring_scope = scopes[account_id]
        return SimpleNamespace(config=config)

    monkeypatch.setattr(rings.schedules, "list_windows", list_windows)
    monkeypatch.setattr(rings.schedules, "describe", describe)
    monkeypatch.setattr(rings, "current_input", current_input)
    found = await rings.rings(_Client({"w1": "held", "w2": "held"}), Scope.everything())
    assert [(r.account_id, r.ring_scope, r.customer_wide) for r in found] == [
        ("111111111111", "customer", True), ("222222222222", "account", False)]

    totals = dict.fromkeys(("instances", "compliant", "non_compliant", "unknown", "missing", "failed", "critical_missing"), 0)
    html = pages._env.get_template("overview.html").render(
        scope=Scope.everything(), who="admin", csrf="c", report={"as_of": None, "totals": totals},
        grid={"customers": [], "providers": [], "cells": {}, "held": {}}, failing=[], chart={"points": 0},
        rings=found, rings_error=None)
    assert 'action="/dashboard/customers/acme%20corp/windows/on-time/release"' in html
    assert 'action="/dashboard/windows/222222222222/on-time/release"' in html
    assert 'action="/dashboard/windows/111111111111/on-time/release"' not in html

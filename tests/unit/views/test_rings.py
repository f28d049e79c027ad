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

    monkeypatch.setattr(rings.schedules, "list_windows", list_windows)
    client = _Client({"w1": "succeeded", "w2": "held", "w3": "held"})
    every = await rings.rings(client, Scope.everything())
    assert [(r.account_id, r.group) for r in every][:2] == [("111111111111", "on-time"), ("222222222222", "late")]
    assert all(r.held for r in every[:2]) and not any(r.held for r in every[2:])
    assert every[0].gated_by == "early" and every[2].gated_by is None and every[0].last_outcome == "held"
    mine = await rings.rings(client, Scope.of_customer("globex"))
    assert asked[-1] == "globex" and {r.customer for r in mine} == {"globex"}

"""The figures of issue 13, their goals, and how a run's results are printed and written.

Every figure is always present in the JSON: a figure a run did not measure is ``null`` with the
reason in ``notes``. ``met`` is true, false, or null (no goal, or not measured).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Figure:
    key: str
    what: str
    unit: str
    goal: float | None  # None: reported, no goal
    at_least: bool = False  # True: the figure must be >= goal; False: <= goal

    def met(self, value: float | None) -> bool | None:
        if value is None or self.goal is None:
            return None
        return value >= self.goal if self.at_least else value <= self.goal

    def goal_text(self) -> str:
        if self.goal is None:
            return ""
        return f"{'>=' if self.at_least else '<='} {self.goal:g} {self.unit}".strip()


FIGURES: tuple[Figure, ...] = (
    Figure("p1_enroll_per_s", "enrollments to activation per second (account exists)", "/s", 20, at_least=True),
    Figure("p1_p99_latency_s", "registration latency p99 at 10 registrations/s", "s", 1.0),
    Figure("p1_ratio_vs_trivial", "enrollment throughput / trivial one-activity workflow throughput", "", 0.6,
           at_least=True),
    Figure("p2_storm_s", "boot storm over four clouds and new customers: time to all enrolled", "s", None),
    Figure("p2_duplicates", "duplicate systems accounts + managed instances + activations left", "", 0),
    Figure("p2_peak_rss_mb", "largest peak RSS of one process during the storm", "MB", None),
    Figure("p3_window_s", "one patch window: dispatch and collect", "s", None),
    Figure("p3_max_history_events", "largest history of any run of the window", "events", 10_239),
    Figure("p3_peak_worker_rss_mb", "largest peak RSS of a worker during the window", "MB", 300),
    Figure("p4_rss_mb_per_1000_open", "orchestrator worker RSS per 1,000 open enrollments", "MB", 100),
    Figure("p5_compliance_ms", "GET /v1/compliance by customer, provider (admin), median", "ms", 300),
    Figure("p5_instances_page_ms", "GET /v1/instances first page of 100 (admin), median", "ms", 300),
)
KEYS = tuple(f.key for f in FIGURES)


@dataclass
class Results:
    """What one run measured: figures, the conditions of each part, notes, and detail rows."""

    values: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(KEYS))
    conditions: dict[str, str] = field(default_factory=dict)  # part ("p1") -> conditions
    notes: dict[str, str] = field(default_factory=dict)  # key or part -> note
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # part -> extra numbers

    def set(self, key: str, value: float | None) -> None:
        if key not in self.values:
            raise KeyError(key)
        self.values[key] = None if value is None else round(float(value), 3)

    def as_json(self) -> dict[str, Any]:
        by_key = {f.key: f for f in FIGURES}
        return {
            **self.values,
            "goals": {k: {"goal": by_key[k].goal, "at_least": by_key[k].at_least, "unit": by_key[k].unit,
                          "met": by_key[k].met(v)} for k, v in self.values.items()},
            "conditions": self.conditions,
            "notes": {k: v for k, v in self.notes.items()},
            "details": self.details,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_json(), indent=2, sort_keys=False) + "\n")


def table(results: Results) -> Any:
    from rich.table import Table

    out = Table(title="fleetpatch benchmarks (issue 13)")
    for column in ("figure", "value", "goal", "met", "note"):
        out.add_column(column, justify="right" if column in ("value", "goal") else "left",
                       overflow="fold")
    for figure in FIGURES:
        value = results.values[figure.key]
        part = figure.key.split("_", 1)[0]
        if value is None:
            note = (results.notes.get(figure.key) or results.notes.get(part) or "not run")[:120]
            shown = "-"
        else:
            note = results.notes.get(figure.key, "")
            shown = f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
        out.add_row(figure.key, shown, figure.goal_text(), {True: "yes", False: "NO", None: ""}[figure.met(value)], note)
    return out

"""Inline SVG charts, computed on the server: the page loads nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from estate.results import TrendPoint

WIDTH, HEIGHT, PAD = 640, 180, 28


@dataclass
class TrendChart:
    width: int
    height: int
    compliant: str  # polyline points: share of compliant instances, 0-100 %
    non_compliant: str  # polyline points: share of non-compliant instances
    y_ticks: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]
    last_compliant_pct: float | None
    points: int


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def trend_chart(points: list[TrendPoint]) -> TrendChart:
    """Compliant and non-compliant shares over time, newest right; one point per aggregate time."""
    merged: dict = {}
    for point in points:  # a scope over several customers: add their counters per time
        slot = merged.setdefault(point.at, [0, 0, 0])
        slot[0] += point.counters.instances
        slot[1] += point.counters.compliant
        slot[2] += point.counters.non_compliant
    times = sorted(merged)
    span_x = WIDTH - 2 * PAD
    span_y = HEIGHT - 2 * PAD

    def xy(i: int, pct: float) -> str:
        x = PAD + (span_x * i / (len(times) - 1) if len(times) > 1 else span_x / 2)
        return f"{x:.1f},{PAD + span_y * (1 - pct / 100):.1f}"

    good = " ".join(xy(i, _pct(merged[t][1], merged[t][0])) for i, t in enumerate(times))
    bad = " ".join(xy(i, _pct(merged[t][2], merged[t][0])) for i, t in enumerate(times))
    ticks = [(PAD + span_y * (1 - v / 100), f"{v}%") for v in (0, 50, 100)]
    labels = []
    if times:
        labels.append((float(PAD), times[0].strftime("%d %b")))
        if len(times) > 1:
            labels.append((float(WIDTH - PAD), times[-1].strftime("%d %b")))
    last = _pct(merged[times[-1]][1], merged[times[-1]][0]) if times else None
    return TrendChart(WIDTH, HEIGHT, good, bad, ticks, labels, last, len(times))

"""What ``fleetpatch windows`` prints: a window summary as tables, or as JSON (``--json``)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from clients.cli.common import console, jsonable, print_table
from contracts.patching import WindowOutcome, WindowSummary

#: Outcomes a script may treat as "the window did its job".
GOOD = {WindowOutcome.SUCCEEDED, WindowOutcome.NO_TARGETS}


def summary_json(summary: WindowSummary) -> dict[str, Any]:
    """The summary as ``--json`` prints it: ``outcome``, ``train`` {os: patches in the train},
    ``notes``, ``instances`` [{instance, os, status, installed, missing, failed}] and the rest
    of the summary's fields."""
    data = jsonable(summary)
    data["instances"] = [
        {"instance": row.instance_id, "os": row.os, "status": row.status.value, "installed": row.installed,
         "missing": row.missing, "failed": row.failed, "pending_reboot": row.pending_reboot, "reason": row.reason}
        for row in summary.instances
    ]
    data["failures"] = [{"instance": f.instance_id, "os": f.os, "reason": f.reason} for f in summary.failures]
    return data


def print_summary(summary: WindowSummary) -> None:
    colour = "green" if summary.outcome in GOOD else "red"
    console.print(f"[{colour}]{summary.outcome.value}[/{colour}]  {summary.workflow_id}")
    table = Table(show_header=False)
    rows: list[tuple[str, Any]] = [
        ("targets", summary.targets), ("succeeded", summary.succeeded), ("failed", summary.failed),
        ("cancelled", summary.cancelled), ("not dispatched", summary.not_dispatched),
        ("not delivered", summary.not_delivered), ("in progress", summary.in_progress),
        ("success rate", "-" if summary.success_rate is None else f"{summary.success_rate:.1%}"),
        ("errors / max", f"{summary.errors} / {summary.max_errors}"),
        ("train", ", ".join(f"{os}: {n}" for os, n in summary.train.items()) or "-"),
    ]
    if summary.held_os:
        rows.append(("held OSes", ", ".join(summary.held_os) + " (no early instance of this OS)"))
    if summary.held_reason:
        rows.append(("held", summary.held_reason))
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    for note in summary.notes:
        console.print(f"  note: {note}")
    if summary.failures:
        print_table("failures", ["instance", "os", "reason"],
                    [[f.instance_id, f.os, f.reason] for f in summary.failures[:20]], whole=("instance",))
    if summary.instances:
        print_table("instances", ["instance", "os", "status", "installed", "missing", "failed", "pending reboot"],
                    [[r.instance_id, r.os, r.status.value, str(r.installed), str(r.missing), str(r.failed),
                      str(r.pending_reboot)] for r in summary.instances[:200]], whole=("instance",))
    if summary.report_prefix:
        console.print(f"every instance: {summary.report_prefix}")

"""``fleetpatch windows``: list, show, pause, resume, trigger [--wait], backfill, release.

The patch windows of every systems account are Temporal Schedules (``patch-window/{account}/
{group}``); these commands operate them through ``scheduling``, exactly as the admin API
does. ``temporal schedule list`` and the Temporal UI show the same schedules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import typer
from rich.table import Table
from temporalio.client import Client

import scheduling as schedules
from clients.cli.common import console, err_console, temporal
from config.settings import Settings
from contracts.errors import FleetpatchError
from contracts.patching import WindowOutcome, WindowSummary
from contracts.providers import PatchGroup

app = typer.Typer(name="windows", help="Patch windows: one schedule per systems account and patch group.",
                  no_args_is_help=True)

T = TypeVar("T")
ACCOUNT = typer.Option(..., "--account", "-a", help="The systems account id.")
GROUP = typer.Option(..., "--group", "-g", help="The patch group (ring).")
#: Outcomes a script may treat as "the window did its job".
GOOD = {WindowOutcome.SUCCEEDED, WindowOutcome.NO_TARGETS}


def _run(operation: Callable[[Client], Awaitable[T]]) -> T:
    async def main() -> T:
        client = await temporal(Settings())
        return await operation(client)

    try:
        return asyncio.run(main())
    except FleetpatchError as err:
        err_console.print(f"[red]{err.reason}[/red]")
        raise typer.Exit(1) from err
    except (schedules.WindowConflict, ValueError, TimeoutError) as err:
        err_console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M %Z") if value else "-"


@app.command("list")
def list_windows(
    account: str | None = typer.Option(None, "--account", "-a", help="Only this systems account."),
    customer: str | None = typer.Option(None, "--customer", "-c", help="Only this customer."),
) -> None:
    """Every patch window with its next run."""
    views = _run(lambda client: schedules.list_windows(client, account_id=account, customer=customer))
    table = Table(title="patch windows")
    for column in ("account", "group", "customer", "when", "state", "next run", "last run"):
        table.add_column(column)
    for view in views:
        state = "[yellow]paused[/yellow]" if view.paused else "active"
        last = view.recent[-1].workflow_id if view.recent else "-"
        table.add_row(view.account_id, view.group, view.customer, view.when, state,
                      _when(view.next_runs[0] if view.next_runs else None), last)
    console.print(table)
    if not views:
        err_console.print("no patch windows found (schedules appear once an account is configured)")


@app.command("show")
def show(account: str = ACCOUNT, group: PatchGroup = GROUP) -> None:
    """One window: its schedule, configuration, releases and recent runs with their outcomes."""
    view = _run(lambda client: schedules.show(client, account, group))
    console.print(f"[bold]{view.schedule_id}[/bold]  {view.when}  "
                  + ("[yellow]paused[/yellow]" if view.paused else "active") + (f"  ({view.note})" if view.note else ""))
    console.print("next runs: " + ", ".join(_when(t) for t in view.next_runs))
    if view.config:
        console.print("configuration: " + ", ".join(f"{k}={v}" for k, v in view.config.items() if v is not None))
    if view.gate_releases:
        console.print("recorded releases of earlier runs: " + ", ".join(view.gate_releases))
    table = Table(title="recent runs")
    for column in ("workflow id", "started", "outcome"):
        table.add_column(column)
    for run in view.recent:
        table.add_row(run.workflow_id, _when(run.started_at), "running" if run.running else (run.outcome or "-"))
    console.print(table)


@app.command("pause")
def pause(account: str = ACCOUNT, group: PatchGroup = GROUP,
          note: str | None = typer.Option(None, help="Why (shown with the schedule).")) -> None:
    """Stop the window from opening until it is resumed."""
    _run(lambda client: schedules.pause(client, account, group, note))
    console.print(f"paused {schedules.schedule_id(account, group)}")


@app.command("resume")
def resume(account: str = ACCOUNT, group: PatchGroup = GROUP, note: str | None = typer.Option(None)) -> None:
    """Let a paused window open again on its schedule."""
    _run(lambda client: schedules.resume(client, account, group, note))
    console.print(f"resumed {schedules.schedule_id(account, group)}")


@app.command("trigger")
def trigger(account: str = ACCOUNT, group: PatchGroup = GROUP,
            wait: bool = typer.Option(False, "--wait", help="Wait for the run and print its summary.")) -> None:
    """Open the window now."""

    async def go(client: Client) -> tuple[str, WindowSummary | None]:
        workflow_id = await schedules.trigger(client, account, group)
        return workflow_id, (await schedules.wait(client, workflow_id) if wait else None)

    workflow_id, summary = _run(go)
    console.print(f"started {workflow_id}")
    if summary is not None:
        print_summary(summary)
        if summary.outcome not in GOOD:
            raise typer.Exit(1)


@app.command("backfill")
def backfill(account: str = ACCOUNT, group: PatchGroup = GROUP,
             start: datetime = typer.Option(..., help="From (ISO 8601, exclusive)."),
             end: datetime = typer.Option(..., help="To (ISO 8601).")) -> None:
    """Run, now, the windows the schedule would have opened between START and END."""
    _run(lambda client: schedules.backfill(client, account, group, _aware(start), _aware(end)))
    console.print(f"backfilled {schedules.schedule_id(account, group)} from {start} to {end}")


@app.command("release")
def release(account: str = ACCOUNT, group: PatchGroup = GROUP,
            reason: str = typer.Option("", help="Why the ring may proceed (recorded)."),
            by: str = typer.Option("operator", help="Who releases it."),
            earlier_run: str | None = typer.Option(None, help="The earlier ring's run to waive (default: its last).")) -> None:
    """Release a ring held by its promotion gate: the held run proceeds, or the next run does."""
    result = _run(lambda client: schedules.release(client, account, group, by=by, reason=reason, earlier_run=earlier_run))
    if result.kind == "signalled":
        console.print(f"released the held run {result.workflow_id}")
    else:
        console.print(f"recorded: the next {PatchGroup(group).value} run proceeds despite {result.workflow_id}")


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
    if summary.held_reason:
        rows.append(("held", summary.held_reason))
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    for note in summary.notes:
        console.print(f"  note: {note}")
    if summary.failures:
        failures = Table(title="failures")
        for column in ("instance", "os", "reason"):
            failures.add_column(column)
        for failure in summary.failures[:20]:
            failures.add_row(failure.instance_id, failure.os, failure.reason)
        console.print(failures)
    if summary.instances:
        instances = Table(title="instances")
        for column in ("instance", "os", "status", "installed", "missing", "failed", "pending reboot"):
            instances.add_column(column)
        for row in summary.instances[:200]:
            instances.add_row(row.instance_id, row.os, row.status.value, str(row.installed), str(row.missing),
                              str(row.failed), str(row.pending_reboot))
        console.print(instances)
    if summary.report_prefix:
        console.print(f"every instance: {summary.report_prefix}")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.astimezone()

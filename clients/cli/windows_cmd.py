"""``fleetpatch windows``: list, show, pause, resume, trigger [--wait], backfill, release
(``--account`` or every account of a ``--customer``); ``--json`` on list, show and trigger.

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
from temporalio.client import Client

import scheduling as schedules
from clients.cli.common import console, err_console, jsonable, print_json, print_table, temporal
from clients.cli.window_output import GOOD, print_summary, summary_json
from config.settings import Settings
from contracts.errors import FleetpatchError
from contracts.patching import WindowSummary
from contracts.providers import PatchGroup

app = typer.Typer(name="windows", help="Patch windows: one schedule per systems account and patch group.",
                  no_args_is_help=True)

T = TypeVar("T")
ACCOUNT = typer.Option(..., "--account", "-a", help="The systems account id.")
GROUP = typer.Option(..., "--group", "-g", help="The patch group (ring).")


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


JSON = typer.Option(False, "--json", help="Print JSON instead of tables.")


@app.command("list")
def list_windows(
    account: str | None = typer.Option(None, "--account", "-a", help="Only this systems account."),
    customer: str | None = typer.Option(None, "--customer", "-c", help="Only this customer."),
    as_json: bool = JSON,
) -> None:
    """Every patch window with its next run."""
    views = _run(lambda client: schedules.list_windows(client, account_id=account, customer=customer))
    if as_json:
        print_json({"windows": [_view_json(v) for v in views]})
        return
    rows = [[v.account_id, v.group, v.customer, v.when, "[yellow]paused[/yellow]" if v.paused else "active",
             _when(v.next_runs[0] if v.next_runs else None), v.recent[-1].workflow_id if v.recent else "-"] for v in views]
    print_table("patch windows", ["account", "group", "customer", "when", "state", "next run", "last run"], rows,
                whole=("account", "last run"))
    if not views:
        err_console.print("no patch windows found (schedules appear once an account is configured)")


@app.command("show")
def show(account: str = ACCOUNT, group: PatchGroup = GROUP, as_json: bool = JSON) -> None:
    """One window: its schedule, configuration, releases and recent runs with their outcomes."""
    view = _run(lambda client: schedules.show(client, account, group))
    if as_json:
        print_json(_view_json(view))
        return
    console.print(f"[bold]{view.schedule_id}[/bold]  {view.when}  "
                  + ("[yellow]paused[/yellow]" if view.paused else "active") + (f"  ({view.note})" if view.note else ""))
    console.print("next runs: " + ", ".join(_when(t) for t in view.next_runs))
    if view.config:
        console.print("configuration: " + ", ".join(f"{k}={v}" for k, v in view.config.items() if v is not None))
    if view.gate_releases:
        console.print("recorded releases of earlier runs: " + ", ".join(view.gate_releases))
    rows = [[r.workflow_id, _when(r.started_at), "running" if r.running else (r.outcome or "-")] for r in view.recent]
    print_table("recent runs", ["workflow id", "started", "outcome"], rows, whole=("workflow id",))


def _view_json(view: schedules.WindowView) -> dict[str, Any]:
    data = jsonable(view)
    data.pop("memo", None)
    return data


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
            wait: bool = typer.Option(False, "--wait", help="Wait for the run and print its summary."),
            as_json: bool = typer.Option(False, "--json", help="Print the run (with --wait: its summary) as JSON.")) -> None:
    """Open the window now."""

    async def go(client: Client) -> tuple[str, WindowSummary | None]:
        workflow_id = await schedules.trigger(client, account, group)
        return workflow_id, (await schedules.wait(client, workflow_id) if wait else None)

    workflow_id, summary = _run(go)
    if as_json:
        print_json(summary_json(summary) if summary is not None else {"workflow_id": workflow_id})
    else:
        console.print(f"started {workflow_id}")
        if summary is not None:
            print_summary(summary)
    if summary is not None and summary.outcome not in GOOD:
        raise typer.Exit(1)


@app.command("backfill")
def backfill(account: str = ACCOUNT, group: PatchGroup = GROUP,
             start: datetime = typer.Option(..., help="From (ISO 8601, exclusive)."),
             end: datetime = typer.Option(..., help="To (ISO 8601).")) -> None:
    """Run, now, the windows the schedule would have opened between START and END."""
    _run(lambda client: schedules.backfill(client, account, group, _aware(start), _aware(end)))
    console.print(f"backfilled {schedules.schedule_id(account, group)} from {start} to {end}")


@app.command("release")
def release(account: str | None = typer.Option(None, "--account", "-a", help="The systems account id."),
            customer: str | None = typer.Option(None, "--customer", "-c",
                                                help="Release the ring in every systems account of this customer."),
            group: PatchGroup = GROUP,
            reason: str = typer.Option("", help="Why the ring may proceed (recorded)."),
            by: str = typer.Option("operator", help="Who releases it."),
            earlier_run: str | None = typer.Option(None, help="The earlier ring's run to waive (default: the last "
                                                                "run of every account of the customer).")) -> None:
    """Release a ring held by its promotion gate, in one account or in every account of a
    customer: each held run proceeds, or the next run does."""
    if (account is None) == (customer is None):
        err_console.print("[red]give exactly one of --account and --customer[/red]")
        raise typer.Exit(2)
    if customer is not None:
        results = _run(lambda client: schedules.release_customer(client, customer, group, by=by, reason=reason))
    else:
        results = {account: _run(lambda client: schedules.release(client, account, group, by=by, reason=reason,
                                                                   earlier_run=earlier_run))}
    for where, result in results.items():
        if result.kind == "signalled":
            console.print(f"{where}: released the held run {result.workflow_id}")
        else:
            console.print(f"{where}: recorded: the next {PatchGroup(group).value} run proceeds despite {result.workflow_id}")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.astimezone()

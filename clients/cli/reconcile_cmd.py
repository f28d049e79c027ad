"""``fleetpatch reconcile``: keep SSM true to the clouds now (admin API ``/v1/admin/reconcile``).

Every linked cloud account also reconciles hourly on its schedule ``reconcile/{provider}/{account}``.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from clients.cli.api_client import call
from clients.cli.common import console, err_console
from config.settings import Settings
from contracts.providers import Provider


def reconcile(
    provider: Provider | None = typer.Option(None, "--provider", "-p", help="Only this provider's linked accounts."),
    account: str | None = typer.Option(None, "--account", "-a", help="Only this cloud account (needs --provider)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Change nothing; show what would be done."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the runs and print what each did."),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON answer."),
) -> None:
    """Compare each linked cloud account's VMs with its managed instances, and act (or show)."""
    if account and provider is None:
        err_console.print("[red]--account needs --provider[/red]")
        raise typer.Exit(2)
    body: dict[str, Any] = {"dry_run": dry_run, "wait": wait}
    if provider is not None:
        body["provider"] = provider.value
    if account:
        body["account"] = account
    answer = call(Settings(), "POST", "/v1/admin/reconcile", json=body, timeout=None if wait else 60)
    if as_json:
        console.print_json(data=answer)
        return
    if not wait:
        for run in answer["runs"]:
            console.print(f"started {run['workflow_id']}")
        return
    for result in answer["results"]:
        _print_result(result)


def _print_result(result: dict[str, Any]) -> None:
    mode = " (dry run: nothing changed)" if result["dry_run"] else ""
    table = Table(title=f"{result['provider']}/{result['cloud_account']}: {result['vms_seen']} VM(s), "
                        f"{result['managed_seen']} managed instance(s){mode}")
    for column in ("action", "instance key", "target", "reason", "evidence", "done"):
        table.add_column(column)
    for action in result["actions"]:
        evidence = ", ".join(f"{k}={v}" for k, v in action["evidence"].items())
        done = "error: " + action["error"] if action.get("error") else ("yes" if action["applied"] else "no")
        table.add_row(action["kind"], action["instance_key"], action["target"], action["reason"], evidence, done)
    console.print(table)

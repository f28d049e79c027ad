"""``fleetpatch reconcile``: keep SSM true to the clouds now (admin API ``/v1/admin/reconcile``).

Every linked cloud account also reconciles hourly on its schedule ``reconcile/{provider}/{account}``.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape

from clients.cli.api_client import call
from clients.cli.common import console, err_console
from config.settings import Settings
from contracts.providers import Provider
from contracts.reconcile import REPORT_ONLY


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
    """One header per account, then one line per action (ids stay whole, for grep and copy)."""
    mode = " (dry run: nothing changed)" if result["dry_run"] else ""
    # EC2 instances are compared through their own tags: there is no managed-instance listing.
    managed = (" (EC2: tagged in the account itself)" if result["provider"] == Provider.AWS.value
               else f", {result['managed_seen']} managed instance(s)")
    console.print(f"[bold]{result['provider']}/{result['cloud_account']}[/bold]: {result['vms_seen']} VM(s)"
                  f"{managed}{mode}", soft_wrap=True)
    for action in result["actions"]:
        evidence = ", ".join(f"{k}={v}" for k, v in action["evidence"].items())
        done = _outcome(action)
        line = escape(f"  {action['kind']} {action['target']} ({action['instance_key']}): {action['reason']} [{evidence}]")
        console.print(f"{line} {done}", soft_wrap=True, highlight=False)
    if result.get("configuration_version"):
        console.print(f"  SSM configuration v{result['configuration_version']}; "
                      f"{len(result.get('windows_ensured', []))} window schedule(s) ensured", soft_wrap=True)


def _outcome(action: dict[str, Any]) -> str:
    if action.get("error"):
        return f"[red]failed: {escape(action['error'])}[/red]"
    if action["kind"] in {kind.value for kind in REPORT_ONLY}:
        return "reported"
    return "done" if action["applied"] else "not done"

"""``fleetpatch enrollments``: the enrollment ledger as Temporal sees it (admin API)."""

from __future__ import annotations

import typer
from clients.cli.api_client import call
from clients.cli.common import console, print_json, print_table
from config.settings import Settings
from contracts.enrollment import EnrollmentState
from contracts.providers import Provider

app = typer.Typer(no_args_is_help=True, help="Enrollments, from Temporal visibility.")


@app.command("list")
def list_(
    customer: str | None = typer.Option(None, "--customer"),
    provider: Provider | None = typer.Option(None, "--provider"),
    state: EnrollmentState | None = typer.Option(None, "--state"),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Enrollments, newest first."""
    chosen = {"customer": customer, "provider": provider and provider.value, "state": state and state.value, "limit": limit}
    params = {k: v for k, v in chosen.items() if v}
    rows = call(Settings(), "GET", "/v1/admin/enrollments", params=params)["enrollments"]
    if as_json:
        print_json({"enrollments": rows})
        return
    print_table(f"{len(rows)} enrollment(s)",
                ["customer", "provider", "instance", "state", "patch group", "systems account", "started"],
                [[row.get("customer") or "-", row.get("provider") or "-", row.get("instance_key") or row["workflow_id"],
                  row.get("state") or row.get("status") or "-", row.get("patch_group") or "-",
                  row.get("systems_account") or "-", (row.get("started") or "")[:19]] for row in rows],
                whole=("instance", "systems account"))


@app.command("reenroll")
def reenroll(
    provider: Provider = typer.Option(..., "--provider"),
    instance_key: str = typer.Option(..., "--instance-key", help="{cloud account}/{instance id}, as `enrollments list` shows"),
    region: str = typer.Option("us-east-1", "--region", help="aws: the instance's region"),
) -> None:
    """Allow an enrolled VM to enrol again: its managed instance is deregistered (EC2: untagged)."""
    done = call(Settings(), "POST", "/v1/admin/enrollments/reenroll",
                json={"provider": provider.value, "instance_key": instance_key, "region": region})
    console.print(done["done"])

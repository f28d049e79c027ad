"""``fleetpatch enrollments``: the enrollment ledger as Temporal sees it (admin API)."""

from __future__ import annotations

import typer
from rich.table import Table

from clients.cli.api_client import call
from clients.cli.common import console
from config.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Enrollments, from Temporal visibility.")


@app.command("list")
def list_(
    customer: str | None = typer.Option(None, "--customer"),
    provider: str | None = typer.Option(None, "--provider"),
    state: str | None = typer.Option(None, "--state", help="verifying, vending, configuring, awaiting-agent, enrolled, refused, failed"),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
) -> None:
    """Enrollments, newest first."""
    params = {k: v for k, v in {"customer": customer, "provider": provider, "state": state, "limit": limit}.items() if v}
    rows = call(Settings(), "GET", "/v1/admin/enrollments", params=params)["enrollments"]
    table = Table(title=f"{len(rows)} enrollment(s)")
    for column in ("customer", "provider", "instance", "state", "patch group", "systems account", "started"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.get("customer") or "-", row.get("provider") or "-", row.get("instance_key") or row["workflow_id"],
            row.get("state") or row.get("status") or "-", row.get("patch_group") or "-",
            row.get("systems_account") or "-", (row.get("started") or "")[:19],
        )
    console.print(table)


@app.command("reenroll")
def reenroll(
    provider: str = typer.Option(..., "--provider", help="gcp, azure, aws or vmware"),
    instance_key: str = typer.Option(..., "--instance-key", help="{cloud account}/{instance id}, as `enrollments list` shows"),
    region: str = typer.Option("us-east-1", "--region", help="aws: the instance's region"),
) -> None:
    """Allow an enrolled VM to enrol again: its managed instance is deregistered (EC2: untagged)."""
    done = call(Settings(), "POST", "/v1/admin/enrollments/reenroll",
                json={"provider": provider, "instance_key": instance_key, "region": region})
    console.print(done["done"])

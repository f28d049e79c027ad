"""``fleetpatch tokens``: read-only tokens for customers (admin API, stored hashed in the estate store)."""

from __future__ import annotations

import typer
from rich.table import Table

from clients.cli.api_client import call
from clients.cli.common import console
from config.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Customer read tokens for the estate API and dashboard.")


@app.command("issue")
def issue(
    customer: str = typer.Option(..., "--customer", help="the customer whose rows the token reads"),
    label: str = typer.Option("", "--label", help="a note for `tokens list`"),
) -> None:
    """Issue a read-only token; prints the token alone on stdout (it is shown only once)."""
    issued = call(Settings(), "POST", "/v1/admin/tokens", json={"customer": customer, "label": label})
    typer.echo(issued["token"])


@app.command("list")
def list_() -> None:
    """Every token: id, customer, label, dates (never the token itself)."""
    rows = call(Settings(), "GET", "/v1/admin/tokens")["tokens"]
    table = Table(title=f"{len(rows)} token(s)")
    table.add_column("id", no_wrap=True, min_width=16)
    for column in ("customer", "label", "created", "last used", "revoked"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["id"], row.get("customer") or "(admin)", row.get("label") or "",
                      (row.get("created_at") or "")[:16], (row.get("last_used_at") or "-")[:16],
                      (row.get("revoked_at") or "-")[:16])
    console.print(table)


@app.command("revoke")
def revoke(token_id: str = typer.Argument(..., help="the id `tokens list` shows")) -> None:
    """Revoke a token: it reads nothing from now on."""
    call(Settings(), "DELETE", f"/v1/admin/tokens/{token_id}")
    console.print(f"revoked {token_id}")

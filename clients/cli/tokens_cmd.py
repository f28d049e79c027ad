"""``fleetpatch tokens``: read-only tokens for customers (admin API, stored hashed in the estate store)."""

from __future__ import annotations

import typer

from clients.cli.api_client import call
from clients.cli.common import console, print_json, print_table
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
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Every token: id, customer, label, dates (never the token itself)."""
    rows = call(Settings(), "GET", "/v1/admin/tokens")["tokens"]
    if as_json:
        print_json({"tokens": rows})
        return
    print_table(f"{len(rows)} token(s)", ["id", "customer", "label", "created", "last used", "revoked"],
                [[row["id"], row.get("customer") or "(admin)", row.get("label") or "", (row.get("created_at") or "")[:16],
                  (row.get("last_used_at") or "-")[:16], (row.get("revoked_at") or "-")[:16]] for row in rows],
                whole=("id",))


@app.command("revoke")
def revoke(token_id: str = typer.Argument(..., help="the id `tokens list` shows")) -> None:
    """Revoke a token: it reads nothing from now on."""
    call(Settings(), "DELETE", f"/v1/admin/tokens/{token_id}")
    console.print(f"revoked {token_id}")

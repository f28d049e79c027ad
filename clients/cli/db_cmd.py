"""``fleetpatch db``: the estate store's schema (Alembic migrations)."""

from __future__ import annotations

import typer

from clients.cli.common import console, err_console
from config.settings import Settings

app = typer.Typer(no_args_is_help=True, help="The estate store's schema.")


@app.command("upgrade")
def upgrade(
    revision: str = typer.Argument("head", help="Alembic revision to reach."),
) -> None:
    """Bring the estate store (FLEETPATCH_DATABASE__URL, else .fleetpatch/estate.db) to the current schema."""
    from estate import db

    url = Settings().database_url
    try:
        db.upgrade(url, revision)
    except Exception as err:  # unreachable server, bad credentials, unknown revision
        err_console.print(f"[red]cannot upgrade {db.display_url(url)}: {type(err).__name__}: {err}[/red]")
        raise typer.Exit(1) from err
    console.print(f"{db.display_url(url)} at revision {db.current_revision(url)}")

"""What every CLI command shares: settings, the Temporal connection, clear failures."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from temporalio.client import Client

from config.settings import Settings
from config.temporal import TemporalNotConfigured, connect

console = Console()
err_console = Console(stderr=True)


async def temporal(settings: Settings, **overrides: Any) -> Client:
    try:
        return await connect(settings, **overrides)
    except TemporalNotConfigured as err:
        err_console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    except Exception as err:  # connection refused, TLS, DNS
        err_console.print(f"[red]cannot reach Temporal: {err}[/red]")
        raise typer.Exit(2) from err

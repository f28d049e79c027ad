"""What every CLI command shares: settings, the Temporal connection, clear failures."""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
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


def print_table(title: str, columns: list[str], rows: list[list[str]], *, whole: tuple[str, ...] = ()) -> None:
    """A table whose ``whole`` columns (ids an operator copies into another command) are never
    cut: each is as wide as its longest value; the other columns fold at their words when the
    terminal is narrow."""
    table = Table(title=title)
    for index, name in enumerate(columns):
        if name in whole:
            width = max([len(name)] + [len(Text.from_markup(row[index]).plain) for row in rows])
            table.add_column(name, no_wrap=True, min_width=width, overflow="fold")
        else:  # folds at its words: as wide as its longest word (up to 12), so a date stays whole
            words = [w for row in rows for w in Text.from_markup(row[index]).plain.split()] + name.split()
            table.add_column(name, overflow="fold", min_width=min(12, max(map(len, words), default=1)))
    for row in rows:
        table.add_row(*row)
    print_whole(table)


def print_whole(table: Table) -> None:
    """Print a table that no terminal width squeezes: when even its narrowest layout is wider
    than the terminal, it is printed at that width and the lines run on (never a column folded
    away to nothing, never a value cut)."""
    needed = Measurement.get(console, console.options.update_width(10_000), table).minimum
    if needed <= console.width:
        console.print(table)
        return
    terminal = console.width
    console.width = needed
    try:
        console.print(table, crop=False)
    finally:
        console.width = terminal


def print_json(data: Any) -> None:
    """``--json``: the data alone on stdout (dataclasses, enums and datetimes as JSON)."""
    typer.echo(json.dumps(jsonable(data), indent=2, sort_keys=True))


def jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return value

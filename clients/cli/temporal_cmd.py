"""``fleetpatch temporal ...``: what fleetpatch needs of a Temporal namespace, from one source.

``search-attributes`` prints (or, with ``--apply``, registers) the search attributes of
``contracts/search_attributes.py``; ``namespace --apply`` creates the namespace when missing. The
compose deployment's setup job runs both; the local default passes the same list to the dev server.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import typer

from config.settings import Settings, parse_duration
from config.temporal import TemporalNotConfigured, connect_with_retry, ensure_namespace, register_search_attributes
from contracts import search_attributes

app = typer.Typer(no_args_is_help=True, help="The Temporal namespace fleetpatch uses: search attributes, namespace.")


@app.command("search-attributes")
def search_attributes_cmd(
    apply: bool = typer.Option(False, "--apply", help="Register the missing ones on the configured namespace."),
    as_json: bool = typer.Option(False, "--json", help="Print {name: type} as JSON."),
) -> None:
    """Print fleetpatch's search attributes (name and type), or register them with --apply."""
    wanted = search_attributes.declared()
    if not apply:
        if as_json:
            typer.echo(json.dumps(wanted, indent=2))
        else:
            for name, kind in wanted.items():
                typer.echo(f"{name}\t{kind}")
        return
    added = _run(_apply_search_attributes())
    typer.echo(f"search attributes: {len(wanted)} declared, {len(added)} added ({', '.join(added) or 'none'})")


@app.command("namespace")
def namespace_cmd(
    apply: bool = typer.Option(False, "--apply", help="Create the namespace when it does not exist."),
    retention: str = typer.Option("30d", help="Workflow retention of a new namespace (e.g. 30d, 72h)."),
) -> None:
    """Print the configured namespace, or create it with --apply (idempotent)."""
    try:
        period = parse_duration(retention)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--retention") from None
    if not isinstance(period, timedelta) or period <= timedelta(0):
        raise typer.BadParameter("must be a positive duration such as 30d", param_hint="--retention")
    if not apply:
        typer.echo(_run(_namespace_name()))
        return
    name, created = _run(_apply_namespace(period))
    typer.echo(f"namespace {name}: {'created' if created else 'exists'}")


def _run(coro):  # type: ignore[no-untyped-def]
    async def settled():  # type: ignore[no-untyped-def]
        try:
            return await coro
        finally:
            # Let the SDK core's last callbacks land before the interpreter shuts down.
            await asyncio.sleep(0.2)

    try:
        return asyncio.run(settled())
    except (TemporalNotConfigured, ConnectionError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None


async def _connect(**overrides):  # type: ignore[no-untyped-def]
    return await connect_with_retry(Settings().local_json, attempts=60, **overrides)


async def _namespace_name() -> str:
    from config.temporal import connect_config

    return str(connect_config(Settings().local_json).get("namespace") or "default")


async def _apply_search_attributes() -> list[str]:
    return await register_search_attributes(await _connect())


async def _apply_namespace(retention: timedelta) -> tuple[str, bool]:
    # The namespace may not exist yet: connect without checking it, then create it.
    client = await _connect()
    return client.namespace, await ensure_namespace(client, retention)

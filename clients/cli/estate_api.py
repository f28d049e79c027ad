"""The CLI's way to the estate read API: ``FLEETPATCH_TOKEN`` (a customer token) when set, else
the admin token, as every other command finds it."""

from __future__ import annotations

import os
from typing import Any

import httpx
import typer

from clients.cli.api_client import admin_client, checked
from clients.cli.common import err_console
from config.settings import Settings


def reader() -> httpx.Client:
    http = admin_client(Settings()) if not os.environ.get("FLEETPATCH_TOKEN") else None
    if http is None:
        base = os.environ.get("FLEETPATCH_API_URL")
        if not base:
            err_console.print("[red]FLEETPATCH_TOKEN needs FLEETPATCH_API_URL[/red]")
            raise typer.Exit(2)
        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {os.environ['FLEETPATCH_TOKEN']}"},
                            timeout=60)
    return http


def get(path: str, **kwargs: Any) -> httpx.Response:
    """A GET through ``reader()``; API errors printed and exit 1, an unreachable API exit 2."""
    with reader() as http:
        try:
            response = http.get(path, **kwargs)
        except httpx.HTTPError as err:
            err_console.print(f"[red]cannot reach the API: {err}[/red]")
            raise typer.Exit(2) from err
    if not response.is_success:
        checked(response)
    return response

"""The CLI's way to the admin API: address and bearer token from the environment or local.json."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import typer

from clients.cli.common import err_console
from config.settings import Settings


def _local(settings: Settings) -> dict[str, Any]:
    try:
        return json.loads(settings.local_json.read_text())
    except (OSError, ValueError):
        return {}


def admin_client(settings: Settings) -> httpx.Client:
    """``FLEETPATCH_API_URL`` / ``FLEETPATCH_ADMIN_TOKEN``, else the local default's local.json."""
    local = _local(settings)
    base = os.environ.get("FLEETPATCH_API_URL") or local.get("api")
    token = os.environ.get("FLEETPATCH_ADMIN_TOKEN")
    if token is None and local.get("admin_token_file"):
        token = Path(local["admin_token_file"]).read_text().strip()
    if not base or not token:
        err_console.print(
            "[red]no API: set FLEETPATCH_API_URL and FLEETPATCH_ADMIN_TOKEN, or start the local default with `fleetpatch up`[/red]"
        )
        raise typer.Exit(2)
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def checked(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a 2xx answer; otherwise the API's error printed, and exit 1."""
    try:
        body = response.json()
    except ValueError:
        body = {"error": "HTTP", "reason": response.text[:300]}
    if response.is_success:
        return body
    err_console.print(f"[red]{response.status_code} {body.get('error', '')}: {body.get('reason', body)}[/red]")
    for detail in body.get("details") or []:
        err_console.print(f"  {detail.get('field', '')}: {detail.get('msg')}")
    raise typer.Exit(1)


def _settled(http: httpx.Client, response: httpx.Response, patience: float = 600.0) -> httpx.Response:
    """Follow an admin operation that answered 202 (``Location: /v1/admin/operations/...``) to its end."""
    deadline = time.monotonic() + patience
    while response.status_code == 202 and response.headers.get("location", "").startswith("/v1/admin/operations/"):
        if time.monotonic() > deadline:
            break
        time.sleep(min(10.0, float(response.headers.get("retry-after", "2") or 2)))
        response = http.get(response.headers["location"])
    return response


def answer(http: httpx.Client, first: httpx.Response) -> dict[str, Any]:
    """The JSON result of an admin call, following a 202 (past the API's budget) to its end."""
    body = checked(_settled(http, first))
    # A polled operation answers {"state": "completed", "result": ...}: give the result.
    return body["result"] if first.status_code == 202 and body.get("state") == "completed" else body


def call(settings: Settings, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    with admin_client(settings) as http:
        try:
            return answer(http, http.request(method, path, **kwargs))
        except httpx.HTTPError as err:
            err_console.print(f"[red]cannot reach the API: {err}[/red]")
            raise typer.Exit(2) from err

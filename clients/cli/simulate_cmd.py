"""``fleetpatch simulate --vms N [--customers K]``: boot a simulated fleet and watch it enroll.

Talks to the fleet host of the local default (``local.json`` key ``fleet``): links the demo
customers' cloud accounts through the admin API where they are not linked yet (the same
``POST /v1/admin/links`` an operator uses), boots N VMs over GCP, Azure, EC2 and the vCenter,
shows their enrollment (booting, registering, activated, agent online, failed) as a progress bar,
and ends with a table per cloud and customer. Exits 1 if any VM failed or the wait timed out.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clients.cli.api_client import admin_client, answer, checked
from clients.cli.common import console, err_console
from config.settings import Settings

DONE = ("agent online", "failed")
STATES = ("booting", "registering", "activated", "agent online", "failed")


def _fleet_url(settings: Settings) -> str:
    try:
        local = json.loads(settings.local_json.read_text())
        return str(local["fleet"]["url"]).rstrip("/")
    except (OSError, ValueError, KeyError, TypeError):
        err_console.print("[red]no simulated fleet: start the local default with `fleetpatch up`"
                          f" ({settings.local_json} has no fleet)[/red]")
        raise typer.Exit(2) from None


def _fleet(http: httpx.Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = http.request(method, path, **kwargs)
    except httpx.HTTPError as err:
        err_console.print(f"[red]cannot reach the fleet host: {err}[/red]")
        raise typer.Exit(2) from err
    return checked(response)


def link_customers(settings: Settings, links: list[dict[str, Any]]) -> tuple[int, int]:
    """Link every demo cloud account that is not linked yet; (newly linked, already linked)."""
    with admin_client(settings) as api:
        try:
            existing = answer(api, api.get("/v1/admin/links"))["links"]  # a loaded API may answer 202 first
            known = {(link["provider"], str(link["cloud_account"]).lower()) for link in existing}
            added = 0
            for link in links:
                if (link["provider"], str(link["cloud_account"]).lower()) in known:
                    continue
                answer(api, api.post("/v1/admin/links", json=link))
                added += 1
        except httpx.HTTPError as err:
            err_console.print(f"[red]cannot reach the API: {err}[/red]")
            raise typer.Exit(2) from err
    return added, len(links) - added


def _describe(counts: Counter[str]) -> str:
    return " · ".join(f"{state} {counts.get(state, 0)}" for state in STATES)


def _listed(http: httpx.Client, patience: float = 60.0) -> list[dict[str, Any]]:
    """The fleet's VMs; a busy fleet host that drops a connection is asked again (for a minute)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return checked(http.get("/vms"))["vms"]
        except httpx.TransportError as err:
            if time.monotonic() >= deadline:
                err_console.print(f"[red]cannot reach the fleet host: {err}[/red]")
                raise typer.Exit(2) from err
            time.sleep(1.0)


def watch(http: httpx.Client, names: set[str], timeout: float, interval: float = 1.0
          ) -> list[dict[str, Any]]:
    """Poll the fleet host until every VM in ``names`` is online or failed (or ``timeout``)."""
    reported: set[str] = set()
    deadline = time.monotonic() + timeout
    columns = (TextColumn("[bold]enrolling[/bold]"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=len(names))
        while True:
            vms = [v for v in _listed(http) if v["name"] in names]
            counts = Counter(v["state"] for v in vms)
            for vm in vms:
                if vm["state"] == "failed" and vm["name"] not in reported:
                    reported.add(vm["name"])
                    progress.console.print(f"[red]{vm['name']} failed:[/red] {vm['reason']}")
            progress.update(task, completed=counts["agent online"] + counts["failed"],
                            description=_describe(counts))
            if all(v["state"] in DONE for v in vms) or time.monotonic() >= deadline:
                return vms
            time.sleep(interval)


def summary(vms: list[dict[str, Any]]) -> Table:
    table = Table(title="simulated fleet")
    for column in ("cloud", "customer", "enrolled", "failed", "pending"):
        table.add_column(column, justify="right" if column in ("enrolled", "failed", "pending")
                         else "left")
    groups: dict[tuple[str, str], Counter[str]] = {}
    for vm in vms:
        groups.setdefault((vm["provider"], vm["customer"]), Counter())[vm["state"]] += 1
    for (provider, customer), counts in sorted(groups.items()):
        pending = sum(n for state, n in counts.items() if state not in DONE)
        table.add_row(provider, customer, str(counts["agent online"]), str(counts["failed"]),
                      str(pending))
    return table


def simulate(
    vms: int = typer.Option(..., "--vms", min=1, max=1000, help="How many VMs to boot."),
    customers: int = typer.Option(1, "--customers", min=1, max=100,
                                  help="Spread them over this many demo customers."),
    timeout: float = typer.Option(900.0, help="Seconds to wait for every VM to enroll."),
    command_duration: float | None = typer.Option(
        None, help="Seconds each SSM command takes on these VMs (default: the fleet's)."),
    failure_rate: float | None = typer.Option(
        None, min=0.0, max=1.0, help="Share of SSM commands that fail on these VMs."),
    agent: bool | None = typer.Option(
        None, "--agent/--without-agent", help="Boot every VM with an SSM agent, or every Linux VM outside EC2 "
        "without one (its startup script installs it); default: every sixth boots without one."),
) -> None:
    """Boot simulated VMs over four clouds; they run the real startup script and enroll."""
    settings = Settings()
    with httpx.Client(base_url=_fleet_url(settings), timeout=60) as fleet:
        links = _fleet(fleet, "GET", "/customers", params={"count": customers})["links"]
        added, present = link_customers(settings, links)
        console.print(f"linked {added} cloud account(s) of {customers} demo customer(s)"
                      f" ({present} already linked)")
        body: dict[str, Any] = {"count": vms, "customers": customers}
        if command_duration is not None:
            body["command_duration"] = command_duration
        if failure_rate is not None:
            body["failure_rate"] = failure_rate
        if agent is not None:
            body["without_agent"] = not agent
        booted = _fleet(fleet, "POST", "/vms", json=body)["vms"]
        result = watch(fleet, {v["name"] for v in booted}, timeout)
    console.print(summary(result))
    failed = [v for v in result if v["state"] == "failed"]
    unfinished = [v for v in result if v["state"] not in DONE]
    if unfinished:
        err_console.print(f"[yellow]{len(unfinished)} VM(s) still enrolling after {timeout:.0f}s"
                          "[/yellow]")
    if failed or unfinished:
        raise typer.Exit(1)
    console.print(f"[green]all {len(result)} VMs enrolled[/green]")

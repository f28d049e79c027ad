"""``fleetpatch up``: run the whole embedded default on loopback."""

from __future__ import annotations

import asyncio
import signal

import typer
from rich.console import Console
from rich.table import Table

from clients.local import state as local_state
from clients.local.supervisor import AlreadyRunning, Supervisor
from config import logging as fp_logging
from config.settings import Settings

console = Console(stderr=True)


def up(
    ready_timeout: float = typer.Option(180.0, help="Seconds to wait for every service to answer."),
) -> None:
    """Start Temporal (dev server + UI), the local clouds, all worker roles and the API."""
    settings = Settings()
    fp_logging.configure("up", level="WARNING", fmt="text")
    raise typer.Exit(asyncio.run(_up(settings, ready_timeout)))


async def _up(settings: Settings, ready_timeout: float) -> int:
    def event(name: str, message: str) -> None:
        console.print(f"[dim]{name:>16}[/dim]  {message}")

    supervisor = Supervisor(settings, on_event=event)
    try:
        supervisor.acquire_lock()
    except AlreadyRunning as err:
        console.print(f"[red]{err}[/red]")
        return 1
    problems = local_state.restore_problems(settings)
    if problems:
        for problem in problems:
            console.print(f"[red]cannot start where the last run stopped:[/red] {problem}.")
        console.print("Run [bold]fleetpatch reset[/bold] to start clean (Temporal and the local "
                      "clouds together), or restore the missing state.")
        supervisor.release_lock()
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await supervisor.start()
        refresher = asyncio.create_task(supervisor.keep_local_json_fresh())
        waiter = asyncio.create_task(supervisor.wait_ready(ready_timeout))
        done, _ = await asyncio.wait({waiter, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            missing = waiter.result()
            _print_addresses(supervisor, missing)
            console.print("[bold]fleetpatch is running.[/bold] Ctrl-C stops everything.")
        await stop.wait()
        refresher.cancel()
    finally:
        console.print("stopping...")
        await supervisor.stop()
        console.print("all stopped.")
    return 0


def _print_addresses(supervisor: Supervisor, missing: list[str]) -> None:
    from clients.local import services

    doc = services.local_json(supervisor.settings, supervisor.clouds, supervisor.pids())
    table = Table(title="fleetpatch (local)", show_lines=False)
    table.add_column("what")
    table.add_column("address")
    table.add_column("for")
    table.add_row("API", doc["api"], f"registrations, admin; OpenAPI at {doc['api']}/docs")
    table.add_row("Temporal UI", doc["temporal_ui"], "workflows, schedules, search by Customer/Provider/...")
    table.add_row("Temporal", doc["temporal"], "gRPC frontend (TEMPORAL_ADDRESS)")
    if "aws" in doc:
        table.add_row("AWS (local)", doc["aws"], "Organizations, SSM, STS, IAM, S3, EC2 (moto + SSM hybrid plane)")
    for key in ("gcp", "azure", "ec2", "vcenter"):
        if key in doc:
            first = next(iter(v for v in doc[key].values() if isinstance(v, str)), "")
            table.add_row(f"{key} (local)", first, "local cloud: metadata + API")
    ports = ",".join(url.rsplit(":", 1)[1].split("/")[0] for name, url in doc["metrics"].items() if name != "api")
    table.add_row("metrics", f"workers :{ports}; API /metrics", "Prometheus (local.json lists each under metrics)")
    table.add_row("local.json", str(supervisor.settings.local_json), "every address above, for tools")
    table.add_row("logs", str(supervisor.logs_dir), "one file per process")
    console.print(table)
    if missing:
        console.print(f"[yellow]not answering yet:[/yellow] {', '.join(missing)} (see logs)")

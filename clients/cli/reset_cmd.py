"""``fleetpatch reset``: start the local default clean (Temporal and the local clouds together)."""

from __future__ import annotations

import typer
from rich.console import Console

from clients.local import state as local_state
from clients.local.supervisor import AlreadyRunning, Supervisor
from config.settings import Settings

console = Console(stderr=True)


def reset(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Forget every workflow, systems account, managed instance and simulated VM of the local
    default (Temporal's database and the local clouds' state, always both); secrets are kept."""
    settings = Settings()
    supervisor = Supervisor(settings)
    try:
        supervisor.acquire_lock()
    except AlreadyRunning as err:
        console.print(f"[red]{err}: stop it first[/red]")
        raise typer.Exit(1) from err
    try:
        state_dir = settings.state_dir.resolve()
        if not yes and not typer.confirm(
            f"Erase Temporal's history and the local clouds' state under {state_dir}?"
        ):
            console.print("nothing erased.")
            raise typer.Exit(1)
        removed = local_state.reset(settings)
    finally:
        supervisor.release_lock()
    console.print(f"erased {len(removed)} entries under {state_dir}; the next `fleetpatch up` "
                  "starts clean.")

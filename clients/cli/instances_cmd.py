"""``fleetpatch instances remove``: decommission one enrolled VM (admin API ``/v1/admin/instances/remove``)."""

from __future__ import annotations

import typer
from rich.markup import escape

from clients.cli.api_client import call
from clients.cli.common import console
from config.settings import Settings
from contracts.providers import Provider


def remove(
    instance_key: str = typer.Argument(..., help="The VM's instance key, CLOUD_ACCOUNT/INSTANCE_ID."),
    provider: Provider = typer.Option(..., "--provider", "-p"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Change nothing; show what would be done."),
) -> None:
    """Decommission one VM: its managed instance leaves SSM (EC2: its fleetpatch tags are removed).
    A VM still labelled for patching enrolls again at its next boot: remove the label too."""
    body = {"provider": provider.value, "instance_key": instance_key, "dry_run": dry_run}
    answer = call(Settings(), "POST", "/v1/admin/instances/remove", json=body, timeout=None)
    verb = "would" if dry_run else "did"
    for action in answer["result"]["actions"]:
        failed = f" [red](failed: {escape(action['error'])})[/red]" if action.get("error") else ""
        console.print(escape(f"{verb} {action['kind']} {action['target']}") + failed, soft_wrap=True)

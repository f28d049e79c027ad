"""``fleetpatch vcenter ...``: operator commands for linked vCenters.

``issue-tokens`` writes a fresh fleetpatch identity token into ``guestinfo.fleetpatch.token`` of
every VM labelled for patching, so each VM can prove who it is at enrollment. Connection and
signing key come from settings (``FLEETPATCH_VMWARE__VCENTERS``). Tokens are never printed. On a
vCenter shared by several customers, ``--vcenter vc01:acme --folder DC0/vm/acme`` issues the tokens
of link ``vc01:acme`` (they enroll under that link only) to the VMs inside its folder.
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Table

from clients.cli.common import console, err_console
from config.settings import Settings
from contracts import vcenter_links
from contracts.errors import FleetpatchError

app = typer.Typer(name="vcenter", help="Linked vCenters: identity tokens.", no_args_is_help=True)


@app.callback()
def vcenter() -> None:
    """Linked vCenters: identity tokens."""  # a group even while it has one command


@app.command("issue-tokens")
def issue_tokens(
    vcenter: str = typer.Option(
        ..., "--vcenter", help="fleetpatch's id of the vCenter, or the link VCENTER:NAME of a shared vCenter."
    ),
    customer: str | None = typer.Option(
        None, "--customer", help="Customer the tokens name (default: the vCenter's setting)."
    ),
    folder: str | None = typer.Option(
        None, "--folder", help="Only VMs inside this folder or resource pool (the link's --folder)."
    ),
) -> None:
    """Write a fresh identity token to every VM whose patching custom attribute is true."""
    from clouds.vmware.vsphere import VcenterEndpoint, VsphereClient  # pyvmomi: the vmware extra only

    settings = Settings()
    if not vcenter_links.is_link_id(vcenter):
        err_console.print(f"[red]--vcenter {vcenter!r} is neither a vCenter id nor VCENTER:NAME[/red]")
        raise typer.Exit(2)
    if vcenter_links.name_of(vcenter) and not folder:
        err_console.print(f"[red]link {vcenter} shares its vCenter: --folder (the link's folder or pool) is required[/red]")
        raise typer.Exit(2)
    configured = settings.vmware.vcenters.get(vcenter_links.vcenter_of(vcenter))
    if configured is None:
        known = ", ".join(sorted(settings.vmware.vcenters)) or "none"
        err_console.print(f"[red]unknown vCenter {vcenter_links.vcenter_of(vcenter)!r} (configured: {known})[/red]")
        raise typer.Exit(2)
    customer = customer or configured.customer
    if not customer:
        err_console.print("[red]--customer is required (no customer is configured)[/red]")
        raise typer.Exit(2)
    if configured.signing_key_file is None:
        err_console.print(f"[red]vCenter {vcenter!r} has no signing_key_file[/red]")
        raise typer.Exit(2)
    try:
        private_pem = configured.signing_key_file.read_text()
        endpoint = VcenterEndpoint.from_settings(settings.vmware, vcenter_links.vcenter_of(vcenter))
    except (OSError, ValueError) as err:
        err_console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    assert endpoint is not None
    try:
        with VsphereClient(endpoint) as client:
            issued = client.issue_tokens(
                vcenter,
                customer,
                private_pem,
                label_name=settings.labels.patching,
                now=datetime.now(UTC),
                ttl=settings.vmware.token_ttl,
                scope=folder,
            )
    except FleetpatchError as err:
        err_console.print(f"[red]{err.type.value}: {err.reason}[/red]")
        raise typer.Exit(1) from err
    table = Table(title=f"tokens issued on {vcenter} (valid {settings.vmware.token_ttl})")
    table.add_column("VM")
    table.add_column("instanceUuid")
    for name, uuid in issued:
        table.add_row(name, uuid)
    console.print(table)
    if not issued:
        err_console.print(f"no VM has {settings.labels.patching}=true")

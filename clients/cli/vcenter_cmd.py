"""``fleetpatch vcenter ...``: operator commands for linked vCenters.

``issue-tokens`` writes a fresh fleetpatch identity token into ``guestinfo.fleetpatch.token`` of
every VM labelled for patching, so each VM can prove who it is at enrollment. Tokens are never
printed. On a vCenter shared by several customers, ``--vcenter vc01:acme --folder DC0/vm/acme``
issues the tokens of link ``vc01:acme`` (they enroll under that link only) to the VMs inside its
folder.

Where it runs: an operator's CLI usually holds no vCenter credentials, so when the vCenter is not
in the CLI's own settings (``FLEETPATCH_VMWARE__VCENTERS``) the command runs the link's token job
(workflow ``VcenterTokens``, with the input of the link's schedule ``vcenter-tokens/{link}``) now,
through Temporal, on the vmware worker that holds the connection and the signing key, and waits for
its answer; every labelled VM gets a fresh token. The customer and folder are the link's (an
operator's ``--customer``/``--folder`` must match them). A CLI that has the vCenter in its settings
connects to it itself, as before.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import typer
from rich.table import Table

from clients.cli.common import console, err_console, temporal
from config.settings import Settings
from contracts import vcenter_links
from contracts import ids
from contracts.errors import FleetpatchError
from contracts.names import WorkflowName
from contracts.vcenter_tokens import VcenterTokensInput, VcenterTokensResult

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
    configured = settings.vmware.vcenters.get(vcenter_links.vcenter_of(vcenter))
    if configured is None:  # the link's own folder: the schedule's input has it
        asyncio.run(_through_worker(settings, vcenter, customer, folder))
        return
    if vcenter_links.name_of(vcenter) and not folder:
        err_console.print(f"[red]link {vcenter} shares its vCenter: --folder (the link's folder or pool) is required[/red]")
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
    for name, instance_uuid in issued:
        table.add_row(name, instance_uuid)
    console.print(table)
    if not issued:
        err_console.print(f"no VM has {settings.labels.patching}=true")


async def _link_input(settings: Settings, link: str) -> tuple[object, VcenterTokensInput]:
    """The Temporal client and the token job's input, read from the link's schedule."""
    from temporalio.client import ScheduleActionStartWorkflow
    from temporalio.service import RPCError, RPCStatusCode

    try:
        client = await temporal(settings)
    except typer.Exit:
        known = ", ".join(sorted(settings.vmware.vcenters)) or "none"
        err_console.print(f"[red]unknown vCenter {vcenter_links.vcenter_of(link)!r} here (configured: {known}), "
                          f"and no Temporal to run link {link}'s token job on the vmware worker[/red]")
        raise
    sid = ids.vcenter_tokens_schedule(link)
    try:
        described = await client.get_schedule_handle(sid).describe()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        err_console.print(f"[red]unknown vCenter link {link!r}: no schedule {sid} (link it with "
                          f"`fleetpatch links add --vcenter ...`, or configure FLEETPATCH_VMWARE__VCENTERS "
                          f"to connect from here)[/red]")
        raise typer.Exit(2) from err
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    [inp] = await client.data_converter.decode(action.args, [VcenterTokensInput])
    return client, inp


async def _through_worker(settings: Settings, link: str, customer: str | None, folder: str | None) -> None:
    """Run the link's token job now on the vmware worker (which holds the vCenter's credentials)."""
    from temporalio.client import WorkflowFailureError

    from scheduling.reconcile import orchestrator_queue

    client, inp = await _link_input(settings, link)
    if customer and customer != inp.customer:
        err_console.print(f"[red]--customer {customer!r} is not link {link}'s customer ({inp.customer})[/red]")
        raise typer.Exit(2)
    if folder and folder.strip("/") != (inp.scope or "").strip("/"):
        err_console.print(f"[red]--folder {folder!r} is not link {link}'s folder ({inp.scope or 'none'})[/red]")
        raise typer.Exit(2)
    inp.renew_all = True
    run = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    try:
        result = await client.execute_workflow(  # type: ignore[attr-defined]
            WorkflowName.VCENTER_TOKENS, inp, id=ids.vcenter_tokens_run(link, run),
            task_queue=orchestrator_queue(inp.queue_prefix), result_type=VcenterTokensResult,
            execution_timeout=timedelta(minutes=5),
        )
    except WorkflowFailureError as err:
        cause = err.cause
        err_console.print(f"[red]token run failed on the vmware worker: {getattr(cause, 'message', cause)}[/red]")
        raise typer.Exit(1) from err
    table = Table(title=f"tokens issued on {link} by the vmware worker (customer {inp.customer})")
    table.add_column("VM (instanceUuid)")
    for entry in result.issued:
        table.add_row(entry)
    console.print(table)
    if not result.issued:
        err_console.print(f"no VM has {inp.patching_label}=true" + (f" inside {inp.scope}" if inp.scope else ""))

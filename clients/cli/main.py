"""The ``fleetpatch`` command line."""

from __future__ import annotations

import typer

from clients.cli import (
    db_cmd,
    doctor_cmd,
    enrollments_cmd,
    estate_cmd,
    instances_cmd,
    links_cmd,
    reconcile_cmd,
    reset_cmd,
    session_cmd,
    simulate_cmd,
    temporal_cmd,
    up_cmd,
    vcenter_cmd,
    verify_cmd,
    tokens_cmd,
    windows_cmd,
)

app = typer.Typer(
    name="fleetpatch",
    help="Patch VMs on GCP, Azure, vCenter and EC2 through AWS Systems Manager, on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("up")(up_cmd.up)
app.command("reset")(reset_cmd.reset)
app.command("doctor")(doctor_cmd.doctor)
app.command("verify")(verify_cmd.verify)
app.command("simulate")(simulate_cmd.simulate)
app.command("reconcile")(reconcile_cmd.reconcile)
app.add_typer(vcenter_cmd.app, name="vcenter", help="vCenter identity tokens.")
app.add_typer(links_cmd.app, name="links")
app.add_typer(enrollments_cmd.app, name="enrollments")
app.add_typer(windows_cmd.app, name="windows")
app.add_typer(temporal_cmd.app, name="temporal")
app.add_typer(db_cmd.app, name="db")
app.add_typer(tokens_cmd.app, name="tokens")
app.add_typer(estate_cmd.compliance_app, name="compliance")
app.add_typer(estate_cmd.instances_app, name="instances")
estate_cmd.instances_app.command("remove")(instances_cmd.remove)
app.command("cve")(estate_cmd.cve)
app.add_typer(session_cmd.app, name="session")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

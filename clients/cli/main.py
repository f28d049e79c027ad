"""The ``fleetpatch`` command line."""

from __future__ import annotations

import typer

from clients.cli import doctor_cmd, up_cmd

app = typer.Typer(
    name="fleetpatch",
    help="Patch VMs on GCP, Azure, vCenter and EC2 through AWS Systems Manager, on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("up")(up_cmd.up)
app.command("doctor")(doctor_cmd.doctor)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

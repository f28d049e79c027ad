"""``fleetpatch session start INSTANCE``: a Session Manager shell on an enrolled VM.

Finds the instance's systems account (``--account``, else among the systems accounts of enrolled
VMs, asking each one's SSM), assumes the operator role there with the operator's own AWS
credentials, then runs ``aws ssm start-session`` when the AWS CLI and the Session Manager plugin
are installed; otherwise prints the exact command, with the temporary credentials exported in the
environment (never on the command line). The VM's link must allow remote access.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import TYPE_CHECKING

import typer

from clients.cli.api_client import call
from clients.cli.common import console, err_console
from config.settings import Settings
from contracts.errors import FleetpatchError

if TYPE_CHECKING:
    from clouds.aws.session_start import SessionPlan

app = typer.Typer(name="session", help="Session Manager sessions on enrolled VMs.", no_args_is_help=True)

_INSTANCE = re.compile(r"^(mi-[0-9a-f]{17}|i-[0-9a-f]{8,17})$")
_ACCOUNT = re.compile(r"^\d{12}$")


@app.callback()
def session() -> None:
    """Session Manager sessions on enrolled VMs."""


def _systems_accounts(settings: Settings) -> list[str]:
    rows = call(settings, "GET", "/v1/admin/enrollments", params={"state": "enrolled", "limit": 1000})["enrollments"]
    return [r["systems_account"] for r in rows if r.get("systems_account")]


def _plan(settings: Settings, instance: str, account: str | None, region: str) -> SessionPlan:
    # boto3 only when a session is started: the CLI itself imports no cloud SDK.
    from clouds.aws.session_start import find_account, plan_session
    from clouds.aws.sessions import AwsSessions

    sessions = AwsSessions(settings.aws)
    account = account or find_account(sessions, settings.aws, instance, _systems_accounts(settings), region)
    if account is None:
        err_console.print(f"[red]no systems account of an enrolled VM knows {instance}[/red]")
        raise typer.Exit(1)
    return plan_session(sessions, settings.aws, instance, account, region)


@app.command("start")
def start(
    instance: str = typer.Argument(..., help="The managed instance id (mi-... or i-...)."),
    account: str | None = typer.Option(None, "--account", help="Its systems account (default: found)."),
    region: str | None = typer.Option(None, "--region", help="The systems account's region (default: settings)."),
) -> None:
    """Open a shell on the instance through Session Manager (or print how to)."""
    if not _INSTANCE.match(instance):
        err_console.print(f"[red]{instance!r} is not a managed instance id (mi-... or i-...)[/red]")
        raise typer.Exit(2)
    if account is not None and not _ACCOUNT.match(account):
        err_console.print(f"[red]--account {account!r} is not a 12-digit AWS account id[/red]")
        raise typer.Exit(2)
    from botocore.exceptions import BotoCoreError, ClientError

    settings = Settings()
    try:
        plan = _plan(settings, instance, account, region or settings.aws.region)
    except FleetpatchError as err:
        err_console.print(f"[red]{err.type.value}: {err.reason}[/red]")
        raise typer.Exit(1) from err
    except (ClientError, BotoCoreError) as err:
        err_console.print(f"[red]AWS refused: {err}[/red]")
        raise typer.Exit(1) from err
    if shutil.which("aws") and shutil.which("session-manager-plugin"):
        completed = subprocess.run(plan.command(), env={**os.environ, **plan.environment}, check=False)  # noqa: S603
        raise typer.Exit(completed.returncode)
    err_console.print(
        f"{instance} is in systems account {plan.account_id}. The AWS CLI or the Session Manager plugin is not "
        "installed here; with both installed, run (the credentials last one hour):"
    )
    console.print(plan.printable(), markup=False, highlight=False, soft_wrap=True)

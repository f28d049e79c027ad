"""``fleetpatch links``: which customer cloud accounts may enroll VMs (admin API)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer
from rich.markup import escape

from clients.cli.api_client import call
from clients.cli.common import console, err_console, print_json, print_table
from config.settings import Settings
from contracts.providers import PatchGroup

app = typer.Typer(no_args_is_help=True, help="Link customer cloud accounts: nothing enrolls unless linked.")


@app.command("add")
def add(
    customer: str = typer.Option(..., "--customer", help="The customer the account belongs to."),
    gcp_project: str | None = typer.Option(None, "--gcp-project"),
    azure_subscription: str | None = typer.Option(None, "--azure-subscription"),
    aws_account: str | None = typer.Option(None, "--aws-account"),
    role_arn: str | None = typer.Option(None, "--role-arn", help="aws: the cross-account role fleetpatch assumes."),
    external_id: str | None = typer.Option(None, "--external-id", help="aws: the role's ExternalId, if any."),
    vcenter: str | None = typer.Option(None, "--vcenter", help="A vCenter id (its VMs get fleetpatch tokens)."),
    name: str | None = typer.Option(
        None, "--name", help="vmware: a further link of a vCenter shared by several customers, VCENTER:NAME "
        "(with --folder; links of one vCenter may not overlap).",
    ),
    public_key: list[Path] = typer.Option(
        [], "--public-key", exists=True, dir_okay=False, help="vmware: PEM public key(s) the vCenter's tokens are signed with."
    ),
    folder: str | None = typer.Option(
        None, "--folder", help="vmware: the customer's folder or resource pool (inventory path, e.g. DC0/vm/acme) "
        "in a vCenter shared by several customers: only VMs inside it get tokens and enroll.",
    ),
    remote_access: bool = typer.Option(
        False, "--remote-access", help="Allow Session Manager sessions (advanced tier, sessions logged to S3)."
    ),
    default_patch_group: PatchGroup = typer.Option(PatchGroup.ON_TIME, "--default-patch-group"),
    time_zone: str = typer.Option("UTC", "--time-zone", help="IANA time zone of the customer's patch windows."),
    window: list[str] = typer.Option(
        [], "--window", help="A patch-window setting, GROUP.FIELD=VALUE (e.g. early.hour=4, late.max_concurrency=25%)."
    ),
) -> None:
    """Link one cloud account to a customer (again: to change it; its windows follow)."""
    chosen = [(p, a) for p, a in (("gcp", gcp_project), ("azure", azure_subscription), ("aws", aws_account), ("vmware", vcenter)) if a]
    if len(chosen) != 1:
        err_console.print("[red]name exactly one of --gcp-project, --azure-subscription, --aws-account, --vcenter[/red]")
        raise typer.Exit(2)
    provider, account = chosen[0]
    if name:
        if provider != "vmware":
            err_console.print("[red]--name names a further link of a vCenter: use it with --vcenter[/red]")
            raise typer.Exit(2)
        account = f"{account}:{name}"
    body = {
        "provider": provider,
        "cloud_account": account,
        "customer": customer,
        "default_patch_group": default_patch_group.value,
        "time_zone": time_zone,
    }
    if role_arn:
        body.update(_role(role_arn, account))
    if external_id:
        body["external_id"] = external_id
    if public_key:
        body["vcenter_public_keys"] = [p.read_text() for p in public_key]
    if folder:
        body["vcenter_scope"] = folder
    if remote_access:
        body["remote_access"] = True
    if window:
        body["windows"] = _windows(window)
    link = call(Settings(), "POST", "/v1/admin/links", json=body)
    link = link["links"][0] if "links" in link else link  # the run's own result, when it answered 202
    console.print(f"linked {link['provider']}/{link['cloud_account']} to {link['customer']} "
                  f"(default patch group {link['default_patch_group']}, {link['time_zone']})")


def _vmware_note(link: dict) -> str:
    """``1 key(s) in DC0/vm/acme`` for a vmware link."""
    keys = f"{len(link['vcenter_public_keys'])} key(s)" if link.get("vcenter_public_keys") else ""
    return f"{keys} in {link['vcenter_scope']}" if link.get("vcenter_scope") else keys


def _role(role_arn: str, account: str) -> dict[str, str]:
    """``arn:{partition}:iam::{account}:role/{name}`` as the API takes it: the role's name and partition."""
    match = re.match(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(.+)$", role_arn)
    if not match or match.group(2) != account:
        err_console.print(f"[red]--role-arn must be a role in the linked account {account} (arn:aws:iam::{account}:role/NAME)[/red]")
        raise typer.Exit(2)
    return {"partition": match.group(1), "role_name": match.group(3)}


def _windows(settings: list[str]) -> dict[str, dict[str, object]]:
    windows: dict[str, dict[str, object]] = {}
    for item in settings:
        target, equals, raw = item.partition("=")
        group, dot, name = target.partition(".")
        if not equals or not dot or not group or not name:
            err_console.print(f"[red]--window {item!r}: use GROUP.FIELD=VALUE[/red]")
            raise typer.Exit(2)
        try:
            value: object = json.loads(raw)
        except ValueError:
            value = raw  # a plain string such as 25% or NoReboot
        windows.setdefault(group, {})[name] = value
    return windows


@app.command("list")
def list_(
    customer: str | None = typer.Option(None, "--customer"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Every linked cloud account."""
    links = call(Settings(), "GET", "/v1/admin/links", params={"customer": customer} if customer else None)["links"]
    if as_json:
        print_json({"links": links})
        return
    rows = [[link["customer"], link["provider"], link["cloud_account"], link["default_patch_group"], link["time_zone"],
             link.get("role_arn") or _vmware_note(link),
             f"[yellow]{link['held']}[/yellow]" if link.get("held") else ""]
            for link in links]
    print_table(f"{len(links)} linked cloud account(s)",
                ["customer", "provider", "cloud account", "default group", "time zone", "role / keys", "rings"], rows,
                whole=("cloud account",))


@app.command("show")
def show(
    provider: str = typer.Argument(..., help="gcp, azure, aws or vmware"),
    cloud_account: str = typer.Argument(..., help="the cloud account; a vmware link: VCENTER or VCENTER:NAME"),
) -> None:
    """One linked cloud account, as JSON (an AWS link's ExternalId masked)."""
    print_json(call(Settings(), "GET", f"/v1/admin/links/{provider}/{cloud_account}"))


@app.command("remove")
def remove(
    provider: str = typer.Argument(..., help="gcp, azure, aws or vmware"),
    cloud_account: str = typer.Argument(...),
    yes: bool = typer.Option(False, "--yes", help="Do it; without --yes only list what would be done."),
) -> None:
    """Offboard a cloud account: pause its schedules, deregister its managed instances, delete its
    activations and unlink it (with --yes; otherwise a dry run). Never closes an AWS account."""
    answer = call(Settings(), "POST", "/v1/admin/offboard", json={"provider": provider, "account": cloud_account, "yes": yes},
                  timeout=None)
    print_offboarding(answer)


def print_offboarding(answer: dict) -> None:
    result = answer["result"]
    verb = "would" if answer["dry_run"] else "did"
    for schedule in answer.get("would_pause", answer.get("paused", [])):
        console.print(f"{verb} pause schedule {schedule}")
    for action in result["actions"]:
        failed = f" [red](failed: {escape(action['error'])})[/red]" if action.get("error") else ""
        console.print(escape(f"{verb} {action['kind']} {action['target']} ({action['instance_key']})") + failed, soft_wrap=True)
    if answer.get("unlinked"):
        console.print(f"unlinked {answer['unlinked']}")
    if answer["dry_run"]:
        console.print("dry run: nothing changed; run again with --yes to offboard")
    console.print(answer["note"])

"""``fleetpatch compliance | instances | cve``: the estate, over the read API.

With ``FLEETPATCH_TOKEN`` set (a customer token) they show that customer's rows only.
"""

from __future__ import annotations

import json
import time
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich import box
from rich.table import Table

from clients.cli.api_client import call
from clients.cli.common import console, err_console, print_table, print_whole
from clients.cli.estate_api import get
from config.settings import Settings

COUNTERS = ("instances", "compliant", "non_compliant", "unknown", "missing", "failed", "critical_missing")
#: short headers, so that a two-key table fits 80 columns
HEADERS = {"instances": "VMs", "compliant": "ok", "non_compliant": "not ok", "critical_missing": "critical missing"}
compliance_app = typer.Typer(help="Compliance of the estate (the estate store, filled by ComplianceSync).")
instances_app = typer.Typer(no_args_is_help=True, help="Managed instances in the estate store.")


@compliance_app.callback(invoke_without_command=True)
def compliance(
    ctx: typer.Context,
    by: str = typer.Option("", "--by", help="group keys, comma-separated: customer,provider,patch_group,systems_account,os"),
    as_json: bool = typer.Option(False, "--json", help="the API's JSON document"),
) -> None:
    """Compliance counters, per group and in total."""
    if ctx.invoked_subcommand is not None:
        return
    keys = [k.strip() for k in by.split(",") if k.strip()]
    body = get("/v1/compliance", params=[("group_by", k) for k in keys]).json()
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    rows = [[str(group.get(k) or "-") for k in keys] + [str(group[c]) for c in COUNTERS] for group in body["groups"]]
    table = Table(title=f"compliance as of {(body.get('as_of') or 'never')[:19]}", box=box.SIMPLE_HEAD, show_edge=False)
    for index, column in enumerate(keys):  # names and ids: kept whole
        width = max([len(column)] + [len(row[index]) for row in rows] + [5])
        table.add_column(column.replace("_", " "), no_wrap=True, min_width=width)
    for index, column in enumerate(COUNTERS, start=len(keys)):  # headers fold at their words
        header = HEADERS.get(column, column.replace("_", " "))
        width = max([len(word) for word in header.split()] + [len(row[index]) for row in rows])
        table.add_column(header, justify="right", min_width=width)
    for row in rows:
        table.add_row(*row)
    table.add_row(*(["[b]total[/b]"] + [""] * (len(keys) - 1) if keys else []), *[f"[b]{body['totals'][c]}[/b]" for c in COUNTERS])
    print_whole(table)  # never cut a number or a name: wider than the terminal, lines run on
    for held in body.get("held") or []:  # later rings that only scan an OS: add an early instance of it
        console.print(f"[yellow]{held['customer']}: {held['note']}[/yellow]", soft_wrap=True)


@compliance_app.command("sync")
def sync(
    wait: bool = typer.Option(False, "--wait", help="show progress and wait until the sync is done"),
    account: list[str] = typer.Option([], "--account", help="only these systems accounts (repeatable)"),
) -> None:
    """Run ComplianceSync now: read every systems account's SSM data into the estate store."""
    started = call(Settings(), "POST", "/v1/admin/compliance/sync", json={"accounts": account})
    workflow_id = started["workflow_id"]
    if not wait:
        console.print(f"started {workflow_id}")
        return
    status = _follow(workflow_id)
    failed = status.get("accounts_failed", 0)
    console.print(f"{workflow_id}: {status.get('accounts_done', 0)} account(s), {status.get('instances', 0)} instance(s)"
                  + (f", [red]{failed} failed[/red]" if failed else ""))
    raise typer.Exit(1 if failed else 0)


def _follow(workflow_id: str, poll: float = 1.0) -> dict[str, Any]:
    """Poll the sync's status with a progress bar until its phase is ``done``."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task("listing accounts", total=None)
        while True:
            status = call(Settings(), "GET", f"/v1/admin/compliance/sync/{workflow_id}")
            total = status.get("accounts_total") or None
            progress.update(task, description=status.get("phase", "?"), total=total,
                            completed=status.get("accounts_done", 0) + status.get("accounts_failed", 0))
            if status.get("phase") == "done" or status.get("finished"):
                return status
            time.sleep(poll)


@instances_app.command("list")
def list_(
    customer: str | None = typer.Option(None, "--customer"),
    provider: str | None = typer.Option(None, "--provider", help="gcp, azure, aws, vmware"),
    patch_group: str | None = typer.Option(None, "--patch-group", help="early, on-time, late"),
    compliance_: str | None = typer.Option(None, "--compliance", help="compliant, non_compliant, unknown"),
    cve: str | None = typer.Option(None, "--cve", help="instances still exposed to this CVE"),
    limit: int = typer.Option(100, "--limit", min=1, max=1000, help="rows (CSV: per page, every page is fetched)"),
    as_json: bool = typer.Option(False, "--json"),
    as_csv: bool = typer.Option(False, "--csv", help="every matching row as CSV on stdout"),
) -> None:
    """Instances, failing first."""
    params: dict[str, Any] = {k: v for k, v in {"customer": customer, "provider": provider, "patch_group": patch_group,
                              "compliance": compliance_, "cve": cve}.items() if v}
    params["limit"] = limit
    if as_csv:
        _csv(params)
        return
    body = get("/v1/instances", params={**params, "failing_first": True}).json()
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    print_table(f"{len(body['instances'])} instance(s)" + (" (more: --limit)" if body["next_cursor"] else ""),
                ["instance", "customer", "cloud", "patch group", "os", "compliance", "missing", "failed", "last operation"],
                [[r["managed_instance_id"], r["customer"] or "-", r["provider"] or "-", r["patch_group"] or "-",
                  r["os"] or "-", r["compliance"], str(r["missing"]), str(r["failed"]),
                  f"{r['last_operation'] or '-'} {(r['last_operation_end'] or '')[:16]}"] for r in body["instances"]],
                whole=("instance",))


def _csv(params: dict[str, Any]) -> None:
    cursor, first = None, True
    while True:
        page = get("/v1/instances", params={**params, **({"cursor": cursor} if cursor else {})},
                   headers={"Accept": "text/csv"})
        lines = page.text.splitlines(keepends=True)
        typer.echo("".join(lines if first else lines[1:]), nl=False)
        first, cursor = False, page.headers.get("x-next-cursor")
        if not cursor:
            return


@instances_app.command("show")
def show(managed_instance_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """One instance's audit chain: identity evidence, enrollment, baseline, patches, inventory, windows."""
    d = get(f"/v1/instances/{managed_instance_id}").json()
    if as_json:
        typer.echo(json.dumps(d, indent=2))
        return
    ev, en = d["evidence"], d["enrollment"]
    console.print(f"[b]{d['managed_instance_id']}[/b] {d['instance_key'] or ''}  {d['customer']} / {d['provider']} "
                  f"{d['cloud_account'] or ''}  systems account {d['systems_account']}")
    console.print(f"  compliance  {d['compliance']}: {d['installed']} installed, {d['missing']} missing, {d['failed']} failed "
                  f"({d['last_operation'] or 'no operation yet'} {(d['last_operation_end'] or '')[:19]})")
    console.print(f"  identity    {escape(_evidence_line(ev))}", soft_wrap=True)
    console.print(f"  enrollment  {en.get('workflow_id') or '-'} run {en.get('run_id') or '-'}  {en.get('temporal_ui') or ''}",
                  soft_wrap=True)
    baseline = d.get("baseline") or {}
    console.print(f"  baseline    {baseline.get('name') or d.get('baseline_id') or '-'}  {baseline.get('approval_rule') or ''}")
    for w in d["windows"][:5]:
        console.print(f"  window      {w['window_workflow_id']} {w['status']} {w.get('outcome') or ''} ({w['installed']} installed)")
    exposed = [p for p in d["patches"] if p["state"] in ("Missing", "Failed")]
    for p in exposed:
        console.print(f"  [red]{p['state']:<8}[/red] {p['kb_id']} {p['severity'] or ''} {' '.join(p['cve_ids'])}")
    console.print(f"  software    {len(d['inventory'])} application(s)")


#: How ``instances show`` names what an evidence's key id is (contracts.evidence.KeyKind).
KEY_KINDS = {"kid": "key id", "signer_certificate_sha256": "signer certificate sha256", "link_key_sha256": "vCenter link key"}


def _evidence_line(ev: dict) -> str:
    """How the instance proved its identity, in one line (the digest whole: it is what an auditor compares)."""
    if not ev.get("digest"):
        return "no identity evidence recorded"
    kind = KEY_KINDS.get(ev.get("key_kind") or "", "key")
    return (f"{ev.get('provider') or '-'} signature, {kind} {ev.get('key_id') or '-'}, identity sha256 {ev['digest']}, "
            f"verified {(ev.get('verified_at') or '-')[:19]}")


def cve(cve_id: str = typer.Argument(..., help="e.g. CVE-2024-3094"), as_json: bool = typer.Option(False, "--json")) -> None:
    """Instances still exposed to a CVE (its patch missing or failed), by customer and cloud."""
    body = get(f"/v1/cves/{cve_id.upper()}").json()
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    console.print(f"[b]{body['instances']}[/b] instance(s) exposed to {body['cve_id']}")
    for group in body["groups"]:
        console.print(f"  {group['customer'] or '-'} / {group['provider'] or '-'}: {', '.join(group['instances'])}")

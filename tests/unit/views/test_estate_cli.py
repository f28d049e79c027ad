"""``fleetpatch tokens | compliance | instances | cve`` against the API over real HTTP."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from typer.testing import CliRunner

from clients.cli.main import app
from tests.support import estate_fleet
from tests.unit.views.conftest import ADMIN


@pytest.fixture
def cli(site, tmp_path, monkeypatch):
    monkeypatch.setenv("FLEETPATCH_STATE_DIR", str(tmp_path))  # no local.json: the environment decides
    monkeypatch.setenv("FLEETPATCH_API_URL", site)
    monkeypatch.setenv("FLEETPATCH_ADMIN_TOKEN", ADMIN)
    monkeypatch.delenv("FLEETPATCH_TOKEN", raising=False)
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None):
        result = runner.invoke(app, list(args), env=env)
        return result

    return run


def test_tokens_issue_prints_only_the_token_then_list_and_revoke(cli) -> None:
    issued = cli("tokens", "issue", "--customer", "initech", "--label", "cli test")
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip()
    assert re.fullmatch(r"fpt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", token) and issued.stdout == token + "\n"
    listed = cli("tokens", "list")
    token_id = token.split("_")[1]
    assert token_id in listed.stdout and "initech" in listed.stdout and token not in listed.stdout
    as_json = json.loads(cli("tokens", "list", "--json").stdout)["tokens"]
    assert token_id in {row["id"] for row in as_json} and token not in json.dumps(as_json)
    mine = cli("compliance", "--json", env={"FLEETPATCH_TOKEN": token})
    assert json.loads(mine.stdout)["totals"]["instances"] == estate_fleet.expected("initech")["instances"]
    assert cli("tokens", "revoke", token_id).exit_code == 0
    refused = cli("compliance", "--json", env={"FLEETPATCH_TOKEN": token})
    assert refused.exit_code == 1 and "401" in refused.output


def test_compliance_json_and_table(cli) -> None:
    body = json.loads(cli("compliance", "--by", "customer,provider", "--json").stdout)
    assert body["totals"]["non_compliant"] == estate_fleet.expected()["non_compliant"]
    table = cli("compliance", "--by", "customer")
    assert table.exit_code == 0 and "globex" in table.stdout and "total" in table.stdout
    narrow = cli("compliance", "--by", "customer,provider,patch_group", env={"COLUMNS": "80"})
    assert narrow.exit_code == 0
    for group in body["groups"]:  # at 80 columns no name or number is cut
        assert re.search(rf"{group['customer']}\s+{group['provider']}\s", narrow.stdout), narrow.stdout
    assert "…" not in narrow.stdout
    bad = cli("compliance", "--by", "colour")
    assert bad.exit_code == 1 and "group_by" in bad.output


def test_compliance_says_which_oses_a_customers_later_rings_hold(cli, customer_tokens) -> None:
    table = cli("compliance", "--by", "customer")
    assert table.exit_code == 0 and "acme: ubuntu: held: no early instance of this OS" in table.stdout
    assert "globex: " not in table.stdout
    assert json.loads(cli("compliance", "--json").stdout)["held"][0]["customer"] == "acme"
    theirs = cli("compliance", env={"FLEETPATCH_TOKEN": customer_tokens["globex"]})
    assert theirs.exit_code == 0 and "held:" not in theirs.stdout


def test_instances_list_csv_show_and_cve(cli) -> None:
    rows = list(csv.DictReader(io.StringIO(cli("instances", "list", "--csv", "--limit", "7").stdout)))
    assert len(rows) == estate_fleet.expected()["instances"]  # every page, one header
    listed = json.loads(cli("instances", "list", "--compliance", "non_compliant", "--json").stdout)["instances"]
    assert {r["compliance"] for r in listed} == {"non_compliant"}
    shown = cli("instances", "show", estate_fleet.mid(0, 1))
    assert shown.exit_code == 0 and "enroll/gcp/acme-prod/vm-1" in shown.stdout and "CVE-2024-38063" in shown.stdout
    exposed = cli("cve", "cve-2024-3094")
    assert exposed.exit_code == 0 and "exposed to CVE-2024-3094" in exposed.stdout


def test_compliance_sync_wait_follows_progress_until_done(cli, monkeypatch) -> None:
    """The CLI side of the sync: it starts one run, then polls its status (the route is tested with
    the real workflow in test_sync_route)."""
    from clients.cli import estate_cmd

    statuses = iter([
        {"phase": "listing", "accounts_total": 0, "accounts_done": 0, "accounts_failed": 0},
        {"phase": "syncing", "accounts_total": 3, "accounts_done": 1, "accounts_failed": 0},
        {"phase": "done", "accounts_total": 3, "accounts_done": 2, "accounts_failed": 1, "instances": 9, "finished": True},
    ])
    calls: list[tuple[str, str]] = []

    def fake_call(settings, method, path, **kwargs):
        calls.append((method, path))
        if method == "POST":
            return {"workflow_id": "compliance-sync/manual/x"}
        return next(statuses)

    monkeypatch.setattr(estate_cmd, "call", fake_call)
    monkeypatch.setattr(estate_cmd.time, "sleep", lambda s: None)
    result = cli("compliance", "sync", "--wait")
    assert result.exit_code == 1  # one account failed
    assert calls[0] == ("POST", "/v1/admin/compliance/sync")
    assert calls[1:] == [("GET", "/v1/admin/compliance/sync/compliance-sync/manual/x")] * 3
    assert "1 failed" in result.stdout

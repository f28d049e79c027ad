"""``fleetpatch reconcile``, ``links remove`` and ``instances remove``: what each sends to the admin
API and what it prints of the answer (the API itself is tested in tests/integration/test_reconcile.py)."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from clients.cli import instances_cmd, links_cmd, reconcile_cmd
from clients.cli.main import app

ACTION = {"kind": "deregister", "instance_key": "acme-prod/42", "target": "mi-0123456789abcdef0",
          "reason": "the VM no longer exists in its cloud", "evidence": {"ping_status": "ConnectionLost"},
          "applied": False, "error": None}
RESULT = {"provider": "gcp", "cloud_account": "acme-prod", "dry_run": True, "systems_account": "210987654321",
          "vms_seen": 3, "managed_seen": 4, "actions": [ACTION]}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict[str, Any]]]:
    calls: list[tuple[str, str, dict[str, Any]]] = []

    def fake_call(settings: Any, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        calls.append((method, path, kwargs["json"]))
        if path == "/v1/admin/reconcile":
            return {"results": [RESULT]} if kwargs["json"]["wait"] else {"runs": [{"workflow_id": "reconcile/gcp/acme-prod/run-1"}]}
        if path == "/v1/admin/offboard":
            return {"dry_run": True, "result": RESULT, "would_pause": ["reconcile/gcp/acme-prod"],
                    "note": "fleetpatch never closes an AWS account: the systems account 210987654321 stays open"}
        return {"dry_run": False, "result": {**RESULT, "actions": [{**ACTION, "applied": True}]}}

    for module in (reconcile_cmd, links_cmd, instances_cmd):
        monkeypatch.setattr(module, "call", fake_call)
    return calls


def test_reconcile_dry_run_wait_prints_each_action_with_its_evidence(sent: list) -> None:
    out = CliRunner().invoke(app, ["reconcile", "--provider", "gcp", "--account", "acme-prod", "--dry-run", "--wait"])
    assert out.exit_code == 0, out.output
    assert sent == [("POST", "/v1/admin/reconcile", {"dry_run": True, "wait": True, "provider": "gcp", "account": "acme-prod"})]
    assert "dry run: nothing changed" in out.output and "mi-0123456789abcdef0" in out.output
    assert "ping_status=ConnectionLost" in out.output


def test_reconcile_without_wait_starts_runs_and_an_account_needs_its_provider(sent: list) -> None:
    out = CliRunner().invoke(app, ["reconcile"])
    assert out.exit_code == 0 and "started reconcile/gcp/acme-prod/run-1" in out.output
    assert sent[-1][2] == {"dry_run": False, "wait": False}
    refused = CliRunner().invoke(app, ["reconcile", "--account", "acme-prod"])
    assert refused.exit_code == 2 and len(sent) == 1


def test_links_remove_is_a_dry_run_unless_yes_and_says_no_account_is_closed(sent: list) -> None:
    out = CliRunner().invoke(app, ["links", "remove", "gcp", "acme-prod"])
    assert out.exit_code == 0, out.output
    assert sent == [("POST", "/v1/admin/offboard", {"provider": "gcp", "account": "acme-prod", "yes": False})]
    assert "would pause schedule reconcile/gcp/acme-prod" in out.output
    assert "would deregister mi-0123456789abcdef0" in out.output and "--yes" in out.output
    assert "never closes an AWS account" in out.output
    CliRunner().invoke(app, ["links", "remove", "gcp", "acme-prod", "--yes"])
    assert sent[-1][2]["yes"] is True


def test_instances_remove_sends_the_instance_key(sent: list) -> None:
    out = CliRunner().invoke(app, ["instances", "remove", "acme-prod/42", "--provider", "gcp"])
    assert out.exit_code == 0, out.output
    assert sent == [("POST", "/v1/admin/instances/remove", {"provider": "gcp", "instance_key": "acme-prod/42", "dry_run": False})]
    assert "did deregister mi-0123456789abcdef0" in out.output


def test_reconcile_ec2_and_report_only_actions_are_printed_as_what_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """EC2 instances are read from the account itself (no managed-instance listing): the header says
    so instead of "0 managed instance(s)"; a report-only action is "reported", never "not done"."""
    unenrolled = {**ACTION, "kind": "report-unenrolled", "target": "vm-7", "applied": False,
                  "reason": "labelled for patching but never enrolled"}
    results = [{**RESULT, "dry_run": False, "actions": [unenrolled]},
               {**RESULT, "provider": "aws", "cloud_account": "210000001000", "vms_seen": 2, "managed_seen": 0,
                "dry_run": False, "actions": []}]
    monkeypatch.setattr(reconcile_cmd, "call", lambda *a, **k: {"results": results})
    out = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["reconcile", "--wait"])
    assert out.exit_code == 0, out.output
    assert "never enrolled [ping_status=ConnectionLost] reported" in out.output and "not done" not in out.output
    assert "gcp/acme-prod: 3 VM(s), 4 managed instance(s)" in out.output
    assert "aws/210000001000: 2 VM(s) (EC2: tagged in the account itself)" in out.output
    assert "0 managed instance(s)" not in out.output

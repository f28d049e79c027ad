"""``fleetpatch simulate`` against a fake fleet host and a fake admin API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from clients.cli.simulate_cmd import simulate
from tests.unit.fleet.conftest import Answer, FakeApi

LINKS = [{"provider": "gcp", "cloud_account": "acme-demo-1", "customer": "acme"},
         {"provider": "aws", "cloud_account": "210000001000", "customer": "acme",
          "role_arn": "arn:aws:iam::210000001000:role/FleetpatchAccess"}]


def _vm(name: str, provider: str, state: str, reason: str = "") -> dict[str, str]:
    return {"name": name, "provider": provider, "customer": "acme", "state": state, "reason": reason}


@pytest.fixture
def cli(tmp_path: Path, fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    token = tmp_path / "admin-token"
    token.write_text("s3cret\n")
    state = tmp_path / ".fleetpatch"
    state.mkdir()
    (state / "local.json").write_text(json.dumps({"api": fake_api.url, "admin_token_file": str(token),
                                                  "fleet": {"url": fake_api.url}}))
    for name in ("FLEETPATCH_API_URL", "FLEETPATCH_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLEETPATCH_STATE_DIR", str(state))
    fake_api.on("GET", "/customers", Answer(200, {"links": LINKS}))
    fake_api.on("GET", "/v1/admin/links", Answer(200, {"links": [LINKS[0]]}))
    fake_api.on("POST", "/v1/admin/links", Answer(201, LINKS[1]))
    fake_api.on("POST", "/vms", Answer(202, {"vms": [_vm("a", "gcp", "booting"), _vm("b", "aws", "booting")]}))
    return fake_api


def _invoke(*args: str) -> object:
    app = typer.Typer()
    app.command()(simulate)
    return CliRunner().invoke(app, list(args))


def test_links_what_is_missing_boots_and_reports(cli: FakeApi) -> None:
    cli.on("GET", "/vms",
           Answer(200, {"vms": [_vm("a", "gcp", "registering"), _vm("b", "aws", "booting"), _vm("z", "gcp", "failed")]}),
           Answer(200, {"vms": [_vm("a", "gcp", "agent online"), _vm("b", "aws", "agent online")]}))
    result = _invoke("--vms", "2", "--customers", "1", "--failure-rate", "0.5")
    assert result.exit_code == 0, result.output
    link_posts = [s for s in cli.posts() if s.path == "/v1/admin/links"]
    assert [s.json() for s in link_posts] == [LINKS[1]]  # only the missing link
    assert link_posts[0].headers["Authorization"] == "Bearer s3cret"
    boot = next(s for s in cli.posts() if s.path == "/vms").json()
    assert boot == {"count": 2, "customers": 1, "failure_rate": 0.5}
    assert "linked 1 cloud account(s)" in result.output and "all 2 VMs enrolled" in result.output
    assert "z failed" not in result.output  # another run's VM is not ours


def test_a_failed_vm_is_shown_and_exits_non_zero(cli: FakeApi) -> None:
    cli.on("GET", "/vms", Answer(200, {"vms": [
        _vm("a", "gcp", "agent online"), _vm("b", "aws", "failed", "startup script exited 2: refused")]}))
    result = _invoke("--vms", "2")
    assert result.exit_code == 1
    assert "b failed: startup script exited 2: refused" in result.output
    assert "simulated fleet" in result.output  # the summary table


def test_without_a_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETPATCH_STATE_DIR", str(tmp_path))
    result = _invoke("--vms", "1")
    assert result.exit_code == 2


def test_watch_asks_a_busy_fleet_host_again() -> None:
    """A fleet host that drops connections under a storm's load is asked again, not given up on
    (a chaos storm's simulate exited 2 on one reset connection)."""
    import httpx

    from clients.cli.simulate_cmd import watch

    answers = iter([httpx.ConnectError("reset"), httpx.ReadError("reset"),
                    {"vms": [_vm("a", "gcp", "agent online")]}])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(200, json=answer)

    with httpx.Client(base_url="http://fleet", transport=httpx.MockTransport(handler)) as http:
        vms = watch(http, {"a"}, timeout=30, interval=0)
    assert [v["state"] for v in vms] == ["agent online"]


def test_a_loaded_api_answering_202_is_followed_and_without_agent_is_asked(cli: FakeApi) -> None:
    """Past its budget the admin API answers 202 + Location; simulate follows it to the result."""
    operation = "/v1/admin/operations/op-1"
    cli.on("GET", "/v1/admin/links", Answer(202, {"state": "running"}, {"Location": operation, "Retry-After": "0"}))
    cli.on("GET", operation, Answer(200, {"state": "completed", "result": {"links": LINKS}}))
    cli.on("GET", "/vms", Answer(200, {"vms": [_vm("a", "gcp", "agent online"), _vm("b", "aws", "agent online")]}))
    result = _invoke("--vms", "2", "--without-agent")
    assert result.exit_code == 0, result.output
    assert [s for s in cli.posts() if s.path == "/v1/admin/links"] == []  # both already linked
    assert next(s for s in cli.posts() if s.path == "/vms").json() == {"count": 2, "customers": 1, "without_agent": True}

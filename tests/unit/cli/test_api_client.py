"""The CLI follows an admin operation that answered 202 to its end, and shows its result or failure."""

from __future__ import annotations

import httpx
import pytest
import typer

from clients.cli import api_client
from config.settings import Settings


def _server(polls_before_done: int, outcome: httpx.Response) -> tuple[httpx.MockTransport, list[str]]:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            return httpx.Response(202, json={"operation_id": "b3A", "state": "running"},
                                  headers={"Location": "/v1/admin/operations/b3A", "Retry-After": "0"})
        if len(seen) <= polls_before_done + 1:
            return httpx.Response(202, json={"operation_id": "b3A", "state": "running"},
                                  headers={"Location": "/v1/admin/operations/b3A", "Retry-After": "0"})
        return outcome

    return httpx.MockTransport(handle), seen


def _call(monkeypatch: pytest.MonkeyPatch, transport: httpx.MockTransport) -> dict:
    monkeypatch.setattr(api_client, "admin_client", lambda settings: httpx.Client(transport=transport, base_url="http://api"))
    return api_client.call(Settings(), "POST", "/v1/admin/enrollments/reenroll", json={})


def test_a_202_is_polled_until_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    done = httpx.Response(200, json={"operation_id": "b3A", "state": "completed", "result": {"done": True}})
    transport, seen = _server(2, done)
    assert _call(monkeypatch, transport) == {"done": True}
    assert seen == ["POST /v1/admin/enrollments/reenroll"] + ["GET /v1/admin/operations/b3A"] * 3


def test_a_failed_operation_exits_with_its_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    failed = httpx.Response(403, json={"error": "TenantNotLinked", "reason": "not linked"})
    transport, _ = _server(0, failed)
    with pytest.raises(typer.Exit) as exited:
        _call(monkeypatch, transport)
    assert exited.value.exit_code == 1

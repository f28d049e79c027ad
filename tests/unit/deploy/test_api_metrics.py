"""The API's /metrics (requests by route template and status, registrations by provider and
outcome) and its JSON access log, which names route templates, never raw paths."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway, TemporalUnavailable
from config.settings import Settings
from tests.unit.api.test_registration_shape import _body


async def _down():  # type: ignore[no-untyped-def]
    raise TemporalUnavailable("down for the test")


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.fixture
def http() -> httpx.AsyncClient:
    app = create_app(Settings(), TemporalGateway(_down))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_requests_are_counted_by_route_template_and_status(http: httpx.AsyncClient) -> None:
    async with http:
        assert (await http.get("/healthz")).status_code == 503
        assert (await http.get("/v1/enrollments/secret-looking-id")).status_code in (400, 401, 404, 503)
        assert (await http.get("/no/such/route")).status_code == 404
        text = (await http.get("/metrics")).text
    requests = _samples(text, "fleetpatch_api_requests_total")
    assert requests[(("method", "GET"), ("route", "/healthz"), ("status", "503"))] == 1
    assert requests[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    assert not [labels for labels in requests if "secret-looking-id" in str(labels)]
    assert any(dict(labels)["route"] == "/v1/enrollments/{enrollment_id}" for labels in requests)
    latency = _samples(text, "fleetpatch_api_request_duration_seconds_count")
    assert latency[(("method", "GET"), ("route", "/healthz"))] == 1


async def test_registrations_are_counted_by_provider_and_outcome(http: httpx.AsyncClient) -> None:
    async with http:
        assert (await http.post("/v1/registrations", content=b"{not json")).status_code == 400
        refused = await http.post("/v1/registrations", json=_body())
        text = (await http.get("/metrics")).text
    registrations = _samples(text, "fleetpatch_registrations_total")
    assert registrations[(("outcome", "malformed"), ("provider", "unknown"))] == 1
    outcome = {401: "refused", 503: "unavailable"}[refused.status_code]  # 503: Temporal is down here
    assert registrations[(("outcome", outcome), ("provider", "gcp"))] == 1


async def test_access_log_is_json_with_the_route_template(http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    from config.logging import JsonFormatter

    caplog.set_level(logging.INFO, logger="fleetpatch.api.access")
    async with http:
        await http.get("/v1/enrollments/secret-looking-id?code=abc")
    records = [r for r in caplog.records if r.name == "fleetpatch.api.access"]
    assert records
    line = json.loads(JsonFormatter("api").format(records[-1]))
    assert line["route"] == "/v1/enrollments/{enrollment_id}" and line["method"] == "GET"
    assert isinstance(line["status"], int) and isinstance(line["duration_ms"], float)
    assert "secret-looking-id" not in json.dumps(line) and "abc" not in json.dumps(line)

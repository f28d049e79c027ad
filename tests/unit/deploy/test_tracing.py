"""Traces: off by default; with an OTLP endpoint, the API's requests become spans named by route
template, exported over OTLP/HTTP, and Temporal clients carry the TracingInterceptor."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from config import telemetry
from config.settings import TelemetrySettings

ROOT = Path(__file__).resolve().parents[3]

_SCRIPT = r'''
import asyncio, httpx
from opentelemetry import trace
from clients.api.app import create_app
from clients.api.gateway import TemporalGateway, TemporalUnavailable
from config import telemetry
from config.settings import Settings
from temporalio.contrib.opentelemetry import TracingInterceptor

async def down():
    raise TemporalUnavailable("down")

async def main():
    settings = Settings()
    app = create_app(settings, TemporalGateway(down))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        await http.get("/healthz")
        await http.get("/v1/enrollments/secret-looking-id")
    interceptors = telemetry.client_interceptors(settings.telemetry, "fleetpatch-api")
    assert [type(i) for i in interceptors] == [TracingInterceptor]
    assert trace.get_tracer_provider().force_flush(5000)

asyncio.run(main())
print("done")
'''


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_tracing_is_off_by_default() -> None:
    off = TelemetrySettings()
    assert telemetry.client_interceptors(off, "x") == []
    assert telemetry.tracer(off, "x") is None
    assert telemetry.worker_runtime(off) is None
    assert telemetry.connect_overrides(off, "x", metrics=True) == {}


def test_api_spans_reach_the_otlp_endpoint() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {"PATH": "/usr/bin:/bin",
               "FLEETPATCH_TELEMETRY__OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
               "FLEETPATCH_TELEMETRY__SERVICE_NAME": "fleetpatch-api-test"}
        done = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0 and "done" in done.stdout, done.stderr[-3000:]
    finally:
        server.shutdown()
    paths = {path for path, _ in _Collector.received}
    assert paths == {"/v1/traces"}
    exported = b"".join(body for _, body in _Collector.received)
    assert b"GET /healthz" in exported and b"GET /v1/enrollments/{enrollment_id}" in exported
    assert b"fleetpatch-api-test" in exported
    assert b"secret-looking-id" not in exported

"""The API's request metrics, access log and request spans.

- ``/metrics`` (Prometheus text): ``fleetpatch_api_requests_total`` and
  ``fleetpatch_api_request_duration_seconds`` by method, route template and status, and
  ``fleetpatch_registrations_total`` by provider and outcome.
- One JSON access-log line per request (logger ``fleetpatch.api.access``): method, route
  template, status, duration. Never the raw path or query: enrollment ids carry a secret.
- A span per request when tracing is configured (config/telemetry.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from config.settings import Settings

access_log = logging.getLogger("fleetpatch.api.access")

#: FastAPI's own OpenTelemetry spans record the raw URL path, which for ``/v1/enrollments/{id}``
#: carries a secret: they stay off, and the middleware below makes one span per request instead.
NATIVE_TELEMETRY_OFF: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI).parameters
    else {}
)

#: How a registration ended, from the status the API answered.
OUTCOMES = {201: "enrolled", 202: "pending", 400: "malformed", 401: "refused", 403: "forbidden",
            409: "conflict", 413: "too_large", 429: "rate_limited", 503: "unavailable"}


class ApiMetrics:
    def __init__(self, settings: Settings | None = None) -> None:
        self.registry = CollectorRegistry()
        if settings is not None:
            from clients.api.estate_metrics import EstateCollector

            self.registry.register(EstateCollector(settings))
        self.requests = Counter(
            "fleetpatch_api_requests", "API requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "fleetpatch_api_request_duration_seconds", "API request latency", ["method", "route"],
            registry=self.registry,
        )
        self.registrations = Counter(
            "fleetpatch_registrations", "VM registrations answered", ["provider", "outcome"], registry=self.registry
        )

    def observe(self, request: Request, route: str, status: int, seconds: float) -> None:
        self.requests.labels(request.method, route, str(status)).inc()
        self.latency.labels(request.method, route).observe(seconds)
        provider = getattr(request.state, "registration_provider", None)
        if provider is not None:
            self.registrations.labels(provider, OUTCOMES.get(status, f"http_{status}")).inc()

    async def render(self) -> Response:
        # The estate gauges read the database: off the event loop.
        body = await asyncio.to_thread(generate_latest, self.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


def route_template(request: Request) -> str:
    """The matched route's path template (``/v1/enrollments/{enrollment_id}``), else ``unmatched``."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def install(app: FastAPI, settings: Settings | None = None, tracer: Any | None = None) -> ApiMetrics:
    """Add the metrics route (with the estate gauges when ``settings`` is given) and the measuring middleware."""
    metrics = ApiMetrics(settings)
    app.state.metrics = metrics

    @app.get("/metrics", include_in_schema=False)
    async def _metrics() -> Response:
        return await metrics.render()

    @app.middleware("http")
    async def _measure(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        status = 500
        # Named by method first: the raw path may carry a secret (enrollment ids); the route
        # template replaces the name once routing has matched.
        span_context = tracer.start_as_current_span(request.method) if tracer is not None else contextlib.nullcontext()
        with span_context as span:
            try:
                response = await call_next(request)
                status = response.status_code
                return response
            finally:
                seconds = time.perf_counter() - started
                route = route_template(request)
                metrics.observe(request, route, status, seconds)
                if span is not None:
                    span.update_name(f"{request.method} {route}")
                    span.set_attribute("http.request.method", request.method)
                    span.set_attribute("http.route", route)
                    span.set_attribute("http.response.status_code", status)
                access_log.info(
                    "request",
                    extra={"method": request.method, "route": route, "status": status,
                           "duration_ms": round(seconds * 1000, 1),
                           "client": request.client.host if request.client else None},
                )

    return metrics

"""Metrics and traces of every fleetpatch process, from settings read at start (never at import).

- Workers: the Temporal SDK's runtime metrics on a Prometheus endpoint
  (``FLEETPATCH_TELEMETRY__METRICS_BIND``, e.g. ``0.0.0.0:9464``); off when unset.
- Traces: ``TracingInterceptor`` on every Temporal client (and so on the workers built from it),
  and a span per API request, exported over OTLP/HTTP when ``FLEETPATCH_TELEMETRY__OTLP_ENDPOINT``
  is set (e.g. ``http://otel-collector:4318``); off by default.
"""

from __future__ import annotations

import logging
from typing import Any

from config.settings import TelemetrySettings

log = logging.getLogger("fleetpatch.telemetry")

_tracing_ready: bool = False


def worker_runtime(settings: TelemetrySettings) -> Any | None:
    """A Temporal ``Runtime`` that serves Prometheus metrics, or None when metrics are off."""
    if not settings.metrics_bind:
        return None
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=settings.metrics_bind),
            global_tags={"service": settings.service_name} if settings.service_name else {},
        )
    )


def setup_tracing(settings: TelemetrySettings, default_service: str) -> bool:
    """Install the OTLP exporter once per process when an endpoint is configured."""
    global _tracing_ready
    if not settings.otlp_endpoint:
        return False
    if _tracing_ready:
        return True
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = settings.otlp_endpoint.rstrip("/")
    if not endpoint.endswith("/v1/traces"):
        endpoint += "/v1/traces"
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name or default_service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _tracing_ready = True
    log.info("tracing on", extra={"otlp_endpoint": endpoint})
    return True


def client_interceptors(settings: TelemetrySettings, default_service: str) -> list[Any]:
    """Interceptors of a Temporal client: tracing when configured (workers inherit them)."""
    if not setup_tracing(settings, default_service):
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def connect_overrides(settings: TelemetrySettings, default_service: str, *, metrics: bool = False) -> dict[str, Any]:
    """Keyword arguments for ``Client.connect``: tracing interceptors, and the metrics runtime."""
    overrides: dict[str, Any] = {}
    interceptors = client_interceptors(settings, default_service)
    if interceptors:
        overrides["interceptors"] = interceptors
    runtime = worker_runtime(settings) if metrics else None
    if runtime is not None:
        overrides["runtime"] = runtime
    return overrides


def tracer(settings: TelemetrySettings, default_service: str) -> Any | None:
    """An OpenTelemetry tracer when tracing is configured, else None."""
    if not setup_tracing(settings, default_service):
        return None
    from opentelemetry import trace

    return trace.get_tracer("fleetpatch")

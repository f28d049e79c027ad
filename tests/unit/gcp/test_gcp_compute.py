"""The Compute API wrapper: SDK failures mapped in one place, the instance id checked."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import compute_v1
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from clouds.gcp.compute import GceInstances, instances_client
from clouds.gcp.errors import GcpAccessDenied, GcpRequestRefused
from clouds.gcp.factory import gce_instances_from_settings, key_source_from_settings
from clouds.gcp.jwks import RemoteJwks, StaticJwks
from config.settings import GcpSettings
from contracts.errors import (
    ErrorType,
    FleetpatchError,
    IdentityRefused,
    InstanceRefused,
    TransientCloudError,
)
from tests.unit.gcp.serving import serve

REPO = Path(__file__).resolve().parents[3]


class FakeInstancesClient:
    """Stands in for ``InstancesClient`` where a test needs one exact SDK exception."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls: list[dict[str, Any]] = []

    def get(self, **kwargs: Any) -> compute_v1.Instance:
        self.calls.append(kwargs)
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (api_exceptions.NotFound("gone"), InstanceRefused),
        (api_exceptions.TooManyRequests("slow down"), TransientCloudError),
        (api_exceptions.InternalServerError("boom"), TransientCloudError),
        (api_exceptions.ServiceUnavailable("later"), TransientCloudError),
        (api_exceptions.GatewayTimeout("later"), TransientCloudError),
        (api_exceptions.RetryError("gave up", None), TransientCloudError),
        (requests.exceptions.ConnectionError("refused"), TransientCloudError),
        (requests.exceptions.ReadTimeout("slow"), TransientCloudError),
        (auth_exceptions.TransportError("no token endpoint"), TransientCloudError),
        (api_exceptions.Forbidden("denied"), GcpAccessDenied),
        (api_exceptions.Unauthorized("who"), GcpAccessDenied),
        (auth_exceptions.DefaultCredentialsError("no ADC"), GcpAccessDenied),
        (auth_exceptions.RefreshError("revoked"), GcpAccessDenied),
        (api_exceptions.BadRequest("bad zone"), GcpRequestRefused),
    ],
)
def test_sdk_errors_are_mapped(exc: BaseException, expected: type[FleetpatchError]) -> None:
    instances = GceInstances(FakeInstancesClient(exc))  # type: ignore[arg-type]
    with pytest.raises(expected) as raised:
        instances.get_instance("acme-prod-123", "us-east1-b", "web-1")
    assert raised.value.__cause__ is exc
    assert raised.value.retryable is (expected is TransientCloudError)
    if expected is InstanceRefused:
        assert raised.value.type is ErrorType.INSTANCE_NOT_FOUND


def test_bugs_are_not_disguised_as_cloud_errors() -> None:
    instances = GceInstances(FakeInstancesClient(KeyError("bug")))  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        instances.get_instance("acme-prod-123", "us-east1-b", "web-1")


def test_sdk_retry_is_off_and_the_timeout_bounded() -> None:
    fake = FakeInstancesClient(compute_v1.Instance(id=5, name="web-1", zone="x/zones/z-1"))
    GceInstances(fake, timeout=7).get_instance("acme-prod-123", "z-1", "web-1")  # type: ignore[arg-type]
    assert fake.calls[0]["retry"] is None and fake.calls[0]["timeout"] == 7


def test_instance_id_mismatch_is_refused() -> None:
    fake = FakeInstancesClient(compute_v1.Instance(id=111, name="web-1", status="RUNNING"))
    instances = GceInstances(fake)  # type: ignore[arg-type]
    with pytest.raises(IdentityRefused) as refused:
        instances.get_instance("acme-prod-123", "us-east1-b", "web-1", expected_id="222")
    assert refused.value.type is ErrorType.IDENTITY_INSTANCE_MISMATCH
    same = instances.get_instance("acme-prod-123", "us-east1-b", "web-1", expected_id="111")
    assert same.instance_id == "111"


def _error_app(status: int) -> Starlette:
    """A server that answers every Compute call with one GCE-shaped error."""

    async def fail(request: Request) -> JSONResponse:
        body = {"error": {"code": status, "message": "injected", "errors": [{"reason": "x"}]}}
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/{path:path}", fail, methods=["GET"])])


@pytest.mark.parametrize(
    ("status", "expected"),
    [(503, TransientCloudError), (429, TransientCloudError), (500, TransientCloudError),
     (403, GcpAccessDenied), (404, InstanceRefused)],
)  # fmt: skip
def test_real_sdk_errors_over_http_are_mapped_without_sdk_retries(
    status: int, expected: type[FleetpatchError]
) -> None:
    with serve(_error_app(status)) as base:
        instances = GceInstances(instances_client(api_endpoint=base, credentials_mode="anonymous"))
        started = time.monotonic()
        with pytest.raises(expected):
            instances.get_instance("acme-prod-123", "us-east1-b", "web-1")
        assert time.monotonic() - started < 5  # no 10-minute SDK retry on 503


def test_unreachable_compute_endpoint_is_transient() -> None:
    client = instances_client(api_endpoint="http://127.0.0.1:9", credentials_mode="anonymous")
    with pytest.raises(TransientCloudError):
        GceInstances(client, timeout=5).get_instance("acme-prod-123", "us-east1-b", "web-1")


def test_factories_follow_settings(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    assert isinstance(key_source_from_settings(GcpSettings(jwks_file=jwks)), StaticJwks)
    remote = key_source_from_settings(GcpSettings(jwks_url="http://127.0.0.1:9/certs"))
    assert isinstance(remote, RemoteJwks)
    local = gce_instances_from_settings(
        GcpSettings(compute_endpoint="http://127.0.0.1:9", compute_credentials="anonymous")
    )
    with pytest.raises(TransientCloudError):
        local.get_instance("acme-prod-123", "us-east1-b", "web-1")


def test_missing_application_default_credentials_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No ADC anywhere: no env file, no gcloud config, and google-auth's GCE probe switched off
    # (it would otherwise try the metadata server's link-local address: no traffic off loopback).
    from google.auth.compute_engine import _metadata

    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True)
    monkeypatch.setattr(_metadata, "ping", _no_probe)
    with pytest.raises(GcpAccessDenied):
        instances_client(credentials_mode="default")


def _no_probe(*args: object, **kwargs: object) -> bool:
    raise AssertionError("the test tried to reach the GCE metadata server")

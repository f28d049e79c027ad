"""The API keeps its contract: malformed input is a 400 naming the field before any workflow
starts, the OpenAPI document states the same rules, and admin mutations answer within budget."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from config.settings import ApiSettings, Settings
from contracts import taskqueues
from contracts.enrollment import LinkCommand, LinkCommandResult, ReenrollInput, ReenrollResult
from contracts.names import WorkflowName
from contracts.providers import WorkerRole
from tests.support.offline_api import NoTemporal

TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _api(factory: Any, **api: Any) -> httpx.AsyncClient:
    settings = Settings(api=ApiSettings(admin_token=SecretStr(TOKEN), **api))
    app = create_app(settings, TemporalGateway(factory) if callable(factory) else factory)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_unlinking_a_malformed_account_is_400_at_once_and_starts_nothing() -> None:
    temporal = NoTemporal()
    async with _api(temporal) as api:
        began = time.monotonic()
        response = await api.delete("/v1/admin/links/aws/%3A", headers=AUTH)
        elapsed = time.monotonic() - began
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "BadRequest" and response.json()["field"] == "cloud_account"
    assert elapsed < 1.0 and temporal.calls == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/v1/admin/windows/12345/early", None, "account"),
        ("GET", "/v1/admin/windows/123456789012/sometime", None, "group"),
        ("GET", "/v1/admin/windows?customer=a'b", None, "customer"),
        ("GET", "/v1/admin/enrollments?limit=0", None, "limit"),
        ("GET", "/v1/admin/enrollments?state=sleeping", None, "state"),
        ("GET", "/v1/admin/operations/%3A%3A%3A%3A", None, "operation_id"),
        ("POST", "/v1/admin/links", {"provider": "gcp", "cloud_account": "Bad_Project", "customer": "acme"}, "cloud_account"),
        ("POST", "/v1/admin/links", {"provider": "aws", "cloud_account": "111122223333", "customer": "acme",
                                     "role_name": "/X"}, "role_name"),
        ("POST", "/v1/admin/links", {"provider": "vmware", "cloud_account": "vc-dc1", "customer": "acme",
                                     "vcenter_public_keys": ["not a key"]}, "vcenter_public_keys.0"),
        ("POST", "/v1/admin/links", {"provider": "gcp", "cloud_account": "acme-prod", "customer": "acme",
                                     "time_zone": "Mars/Olympus"}, "time_zone"),
        ("POST", "/v1/admin/links", {"provider": "gcp", "cloud_account": "acme-prod", "customer": "acme",
                                     "windows": {"early": {"hour": 25}}}, "windows.early.hour"),
        ("POST", "/v1/admin/links", {"provider": "openstack", "cloud_account": "x", "customer": "acme"}, "provider"),
        ("POST", "/v1/admin/enrollments/reenroll", {"provider": "gcp", "instance_key": "no-slash"}, "instance_key"),
        ("POST", "/v1/admin/windows/123456789012/early/backfill", {"start": "2026-01-01T00:00:00Z"}, "minutes"),
    ],
)
async def test_malformed_input_is_400_naming_the_field(method: str, path: str, body: Any, field: str) -> None:
    temporal = NoTemporal()
    async with _api(temporal) as api:
        response = await api.request(method, path, json=body, headers=AUTH)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["error"] == "BadRequest" and answer["field"].split(".")[-1] == field.split(".")[-1], answer
    assert field.split(".")[0] in answer["reason"] or field == "body"
    assert temporal.calls == 0


def _document() -> dict[str, Any]:
    return create_app(Settings(), TemporalGateway(NoTemporal())).openapi()


def test_the_document_declares_400_and_error_bodies_never_422() -> None:
    document = _document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            if operation.get("parameters") or "requestBody" in operation:
                assert "400" in responses, (method, path)
            for status, response in responses.items():
                if int(status) >= 400 and path != "/healthz":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_the_document_states_the_rules_the_api_enforces() -> None:
    document = _document()
    schemas = document["components"]["schemas"]
    registration = schemas["RegistrationRequest"]
    assert registration["discriminator"]["propertyName"] == "provider"
    assert len(registration["oneOf"]) == 4
    assert schemas["VmwareIdentity"]["properties"]["bios_uuid"]["pattern"]
    window = document["paths"]["/v1/admin/windows/{account}/{group}"]["get"]["parameters"]
    by_name = {p["name"]: p["schema"] for p in window}
    assert by_name["account"]["pattern"] == "^[0-9]{12}$"
    assert schemas["PatchGroup"]["enum"] == ["early", "on-time", "late"]
    unlink = document["paths"]["/v1/admin/links/{provider}/{cloud_account}"]["delete"]["parameters"]
    assert {p["name"]: p["schema"] for p in unlink}["cloud_account"]["pattern"]
    assert schemas["AwsLink"]["properties"]["cloud_account"]["pattern"] == "^[0-9]{12}$"
    time_zone = schemas["GcpLink"]["properties"]["time_zone"]
    assert re.fullmatch(time_zone["pattern"], "Europe/London") and re.fullmatch(time_zone["pattern"], "Etc/GMT+1")
    assert not re.fullmatch(time_zone["pattern"], "Mars/Olympus")


def test_the_document_speaks_json_schema_only() -> None:
    """Bounds as ``minimum``/``maximum``: pydantic's own ``ge``/``le`` (which it writes when the bounds
    sit on a validator's wrapper) mean nothing to a client or to schemathesis."""
    stray: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            stray.extend(f"{where}/{key}" for key in ("ge", "le", "gt", "lt") if key in node)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    document = _document()
    walk(document, "")
    assert stray == []
    overrides = document["components"]["schemas"]["WindowOverrides"]["properties"]
    assert overrides["hour"]["anyOf"][0] == {"type": "integer", "minimum": 0, "maximum": 23}


def test_lists_link_to_the_routes_that_read_their_items() -> None:
    paths = _document()["paths"]
    windows = paths["/v1/admin/windows"]["get"]["responses"]["200"]["links"]
    assert windows["showWindow"]["operationId"] == "showWindow"
    links = paths["/v1/admin/links"]["get"]["responses"]["200"]["links"]
    assert links["getLink"]["parameters"]["cloud_account"] == "$response.body#/links/0/cloud_account"
    operation_ids = {op["operationId"] for ops in paths.values() for op in ops.values()}
    for source in (windows, links):
        for link in source.values():
            assert link["operationId"] in operation_ids


# --- budgets, against a real Temporal dev server (real time) ---------------------------


@workflow.defn(name=WorkflowName.LINK_ADMIN)
class _SlowOrFailingLinkAdmin:
    @workflow.run
    async def run(self, command: LinkCommand) -> LinkCommandResult:
        if command.action == "delete":
            raise ApplicationError("refused for the test", type="TenantNotLinked", non_retryable=True)
        await workflow.sleep(timedelta(seconds=8) if command.action == "list" else timedelta(0))
        return LinkCommandResult(links=[])


async def test_admin_calls_answer_within_budget_or_202_and_failures_at_once(dev_env: WorkflowEnvironment, queue_prefix: str) -> None:
    env = dev_env
    settings = Settings(api=ApiSettings(admin_token=SecretStr(TOKEN), admin_budget=timedelta(seconds=3)),
                        task_queue_prefix=queue_prefix)
    app = create_app(settings, TemporalGateway.for_client(env.client))
    queue = taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix)
    async with (
        Worker(env.client, task_queue=queue, workflows=[_SlowOrFailingLinkAdmin], workflow_runner=UnsandboxedWorkflowRunner()),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api,
    ):
        began = time.monotonic()
        failed = await api.delete("/v1/admin/links/aws/111122223333", headers=AUTH)
        assert failed.status_code == 404 and failed.json()["error"] == "TenantNotLinked"  # to an admin: unknown
        assert time.monotonic() - began < 3
        began = time.monotonic()
        slow = await api.get("/v1/admin/links", headers=AUTH)
        assert time.monotonic() - began < 3.5
        assert slow.status_code == 202, slow.text
        location = slow.headers["location"]
        assert location.startswith("/v1/admin/operations/")
        for _ in range(100):
            polled = await api.get(location, headers=AUTH)
            if polled.status_code != 202:
                break
            await asyncio.sleep(0.5)
        assert polled.status_code == 200 and polled.json()["state"] == "completed", polled.text
        assert polled.json()["result"]["links"] == []
        assert (await api.get("/v1/admin/operations/" + "bm9wZQ", headers=AUTH)).status_code == 404


async def test_a_failing_temporal_call_is_503_not_500() -> None:
    from temporalio.service import RPCError, RPCStatusCode

    class _Broken:
        async def list_schedules(self, *args: Any, **kwargs: Any) -> Any:
            raise RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b"")

    async def broken() -> Any:
        return _Broken()

    async with _api(broken) as api:
        response = await api.get("/v1/admin/windows", headers=AUTH)
    assert response.status_code == 503 and response.json()["error"] == "TemporalUnavailable"


@workflow.defn(name=WorkflowName.ALLOW_REENROLLMENT)
class _NotLinkedReenrollment:
    @workflow.run
    async def run(self, inp: ReenrollInput) -> ReenrollResult:
        raise ApplicationError(f"{inp.provider.value} account is not linked", type="TenantNotLinked", non_retryable=True)


async def test_reenrolling_a_vm_of_an_unlinked_account_is_404_not_a_token_refusal(
    dev_env: WorkflowEnvironment, queue_prefix: str
) -> None:
    """403 is what a token that may not call the route gets; an admin naming an unknown VM gets 404."""
    settings = Settings(api=ApiSettings(admin_token=SecretStr(TOKEN)), task_queue_prefix=queue_prefix)
    app = create_app(settings, TemporalGateway.for_client(dev_env.client))
    queue = taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix)
    async with (
        Worker(dev_env.client, task_queue=queue, workflows=[_NotLinkedReenrollment], workflow_runner=UnsandboxedWorkflowRunner()),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api,
    ):
        response = await api.post("/v1/admin/enrollments/reenroll", headers=AUTH,
                                   json={"provider": "gcp", "instance_key": "nobody-linked/1234"})
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "TenantNotLinked"
    declared = _document()["paths"]["/v1/admin/enrollments/reenroll"]["post"]["responses"]
    assert "404" in declared

"""Compute Engine REST (v1) for instances: the subset the product and the fleet simulator call.

Paths, JSON shapes (``id`` as a string, ``zone``/``selfLink`` as URLs, ``labelFingerprint``) and
error bodies (``{"error": {"code", "message", "errors": [{"reason", ...}]}}``) are the real API's,
so ``google-cloud-compute``'s ``InstancesClient`` works against this server unchanged.
``aggregatedList`` groups a project's instances by zone, as reconcile reads them. Mutations answer a zonal Operation that is already ``DONE``; the operation can also be read back
(``zoneOperations.get``/``wait``). ``insert`` honours ``requestId`` (a repeat answers the first
operation). ``setLabels`` demands the current ``labelFingerprint`` (412 otherwise), like GCE.
"""

from __future__ import annotations

import json
import secrets
import threading
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from localclouds.gcp.state import Instance, InstanceStore, StoreError

router = APIRouter()

ZONE = "/compute/v1/projects/{project}/zones/{zone}"


class Operations:
    """Finished operations, in memory (they only matter shortly after a mutation)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, dict[str, Any]] = {}
        self._by_request_id: dict[str, dict[str, Any]] = {}

    def record(self, operation: dict[str, Any], request_id: str | None) -> dict[str, Any]:
        with self._lock:
            self._by_name[operation["name"]] = operation
            if request_id:
                self._by_request_id[request_id] = operation
            return operation

    def by_request_id(self, request_id: str | None) -> dict[str, Any] | None:
        with self._lock:
            return self._by_request_id.get(request_id) if request_id else None

    def get(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._by_name.get(name)


def _error(exc: StoreError) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "code": exc.status,
                "message": exc.message,
                "errors": [{"message": exc.message, "domain": "global", "reason": exc.reason}],
            }
        },
        status_code=exc.status,
    )


def _rfc3339(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}-00:00"


def _zone_url(request: Request, project: str, zone: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/compute/v1/projects/{project}/zones/{zone}"


def instance_json(request: Request, instance: Instance) -> dict[str, Any]:
    zone_url = _zone_url(request, instance.project, instance.zone)
    return {
        "kind": "compute#instance",
        "id": instance.id,
        "creationTimestamp": _rfc3339(instance.created),
        "name": instance.name,
        "description": instance.description,
        "machineType": f"{zone_url}/machineTypes/{instance.machine_type}",
        "status": instance.status,
        "zone": zone_url,
        "selfLink": f"{zone_url}/instances/{instance.name}",
        "labels": dict(instance.labels),
        "labelFingerprint": instance.label_fingerprint,
        "startRestricted": False,
        "deletionProtection": False,
        "lastStartTimestamp": _rfc3339(instance.created),
    }


def _operation(
    request: Request, instance: Instance, operation_type: str, request_id: str | None
) -> JSONResponse:
    zone_url = _zone_url(request, instance.project, instance.zone)
    now = _rfc3339(request.app.state.clock())
    name = f"operation-{int(request.app.state.clock() * 1000)}-{secrets.token_hex(8)}"
    operation = {
        "kind": "compute#operation",
        "id": str(secrets.randbelow(2**63 - 10**18) + 10**18),
        "name": name,
        "zone": zone_url,
        "operationType": operation_type,
        "targetLink": f"{zone_url}/instances/{instance.name}",
        "targetId": instance.id,
        "status": "DONE",
        "user": "local@fleetpatch",
        "progress": 100,
        "insertTime": now,
        "startTime": now,
        "endTime": now,
        "selfLink": f"{zone_url}/operations/{name}",
    }
    operations: Operations = request.app.state.operations
    return JSONResponse(operations.record(operation, request_id))


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise StoreError(400, "parseError", "Parse Error") from exc
    if not isinstance(body, dict):
        raise StoreError(400, "parseError", "Parse Error")
    return body


@router.get(ZONE + "/instances/{instance}")
def get_instance(request: Request, project: str, zone: str, instance: str) -> JSONResponse:
    store: InstanceStore = request.app.state.store
    try:
        return JSONResponse(instance_json(request, store.get(project, zone, instance)))
    except StoreError as exc:
        return _error(exc)


@router.get(ZONE + "/instances")
def list_instances(request: Request, project: str, zone: str) -> JSONResponse:
    store: InstanceStore = request.app.state.store
    items = [instance_json(request, i) for i in store.list(project, zone)]
    answer: dict[str, Any] = {
        "kind": "compute#instanceList",
        "id": f"projects/{project}/zones/{zone}/instances",
        "selfLink": f"{_zone_url(request, project, zone)}/instances",
    }
    if items:
        answer["items"] = items
    return JSONResponse(answer)


@router.get("/compute/v1/projects/{project}/aggregated/instances")
def aggregated_list(request: Request, project: str) -> JSONResponse:
    """``instances.aggregatedList``: the project's instances grouped by ``zones/{zone}``."""
    store: InstanceStore = request.app.state.store
    scopes: dict[str, Any] = {}
    for instance in sorted(store.in_project(project), key=lambda i: (i.zone, i.name)):
        scope = scopes.setdefault(f"zones/{instance.zone}", {"instances": []})
        scope["instances"].append(instance_json(request, instance))
    base = str(request.base_url).rstrip("/")
    return JSONResponse(
        {
            "kind": "compute#instanceAggregatedList",
            "id": f"projects/{project}/aggregated/instances",
            "items": scopes,
            "selfLink": f"{base}/compute/v1/projects/{project}/aggregated/instances",
        }
    )


@router.post(ZONE + "/instances")
async def insert_instance(request: Request, project: str, zone: str) -> JSONResponse:
    store: InstanceStore = request.app.state.store
    operations: Operations = request.app.state.operations
    request_id = request.query_params.get("requestId")
    repeated = operations.by_request_id(request_id)
    if repeated is not None:
        return JSONResponse(repeated)
    try:
        instance = store.insert(project, zone, await _json_body(request))
    except StoreError as exc:
        return _error(exc)
    return _operation(request, instance, "insert", request_id)


@router.delete(ZONE + "/instances/{instance}")
def delete_instance(request: Request, project: str, zone: str, instance: str) -> JSONResponse:
    store: InstanceStore = request.app.state.store
    try:
        deleted = store.delete(project, zone, instance)
    except StoreError as exc:
        return _error(exc)
    return _operation(request, deleted, "delete", request.query_params.get("requestId"))


@router.post(ZONE + "/instances/{instance}/setLabels")
async def set_labels(request: Request, project: str, zone: str, instance: str) -> JSONResponse:
    store: InstanceStore = request.app.state.store
    try:
        body = await _json_body(request)
        updated = store.set_labels(
            project, zone, instance, body.get("labels"), body.get("labelFingerprint")
        )
    except StoreError as exc:
        return _error(exc)
    return _operation(request, updated, "setLabels", request.query_params.get("requestId"))


def _read_operation(request: Request, project: str, zone: str, operation: str) -> JSONResponse:
    operations: Operations = request.app.state.operations
    found = operations.get(operation)
    if found is None or not found["zone"].endswith(f"/projects/{project}/zones/{zone}"):
        return _error(
            StoreError(
                404,
                "notFound",
                f"The resource 'projects/{project}/zones/{zone}/operations/{operation}' "
                "was not found",
            )
        )
    return JSONResponse(found)


@router.get(ZONE + "/operations/{operation}")
def get_operation(request: Request, project: str, zone: str, operation: str) -> JSONResponse:
    return _read_operation(request, project, zone, operation)


@router.post(ZONE + "/operations/{operation}/wait")
def wait_operation(request: Request, project: str, zone: str, operation: str) -> JSONResponse:
    return _read_operation(request, project, zone, operation)

"""The TLS listener: Azure Resource Manager for ``Microsoft.Compute/virtualMachines``.

Paths, JSON shapes, status codes and error bodies are ARM's, so ``azure-mgmt-compute`` works
unchanged against it: GET/PUT/PATCH/DELETE a VM, list VMs by subscription or resource group,
``instanceView`` and the power actions. Every request needs ``api-version`` and a bearer token
the local managed-identity endpoint issued (signature, issuer, ARM audience, lifetime); any
other request gets 401 with ARM's ``WWW-Authenticate`` challenge. Path segments other than
names are case-insensitive, as in ARM. Operations complete at once (provisioningState
``Succeeded``), so the SDK's pollers finish on the first answer.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from localclouds.azure import tokens
from localclouds.azure.context import AzureContext, Context
from localclouds.azure.vms import ArmError, VmStore, arm_view, instance_view_of

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_RG = r"/resourceGroups/(?P<rg>[^/]+)"
_VMS = r"/providers/Microsoft\.Compute/virtualMachines"
LIST_SUB = re.compile(f"^{_SUB}{_VMS}/?$", re.IGNORECASE)
LIST_RG = re.compile(f"^{_SUB}{_RG}{_VMS}/?$", re.IGNORECASE)
VM = re.compile(f"^{_SUB}{_RG}{_VMS}/(?P<name>[^/]+)(?:/(?P<action>[A-Za-z]+))?/?$", re.IGNORECASE)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
#: POST actions and the power state each leaves the VM in.
POWER_ACTIONS = {
    "start": "running",
    "restart": "running",
    "poweroff": "stopped",
    "deallocate": "deallocated",
}


def _answer(status: int, body: Any | None, headers: dict[str, str] | None = None) -> Response:
    content = b"" if body is None else json.dumps(body).encode()
    base = {"x-ms-request-id": str(uuid.uuid4()), "Cache-Control": "no-cache"}
    return Response(
        content,
        status_code=status,
        headers={**base, **(headers or {})},
        media_type="application/json; charset=utf-8" if body is not None else None,
    )


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _answer(status, {"error": {"code": code, "message": message}}, headers)


def _challenge(context: AzureContext, code: str, message: str) -> Response:
    tenant = context.material.identity.tenant_id
    header = (
        f'Bearer authorization_uri="https://login.windows.net/{tenant}", '
        f'error="invalid_token", error_description="{message}"'
    )
    return _error(401, code, message, {"WWW-Authenticate": header})


def _authenticate(request: Request, context: AzureContext) -> Response | None:
    auth = request.headers.get("authorization")
    if not auth:
        return _challenge(
            context,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        )
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _challenge(
            context,
            "AuthenticationFailedInvalidHeader",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        )
    material = context.material
    try:
        tokens.check(token.strip(), material.token_key, material.identity, context.clock())
    except tokens.TokenRejected as exc:
        return _challenge(context, exc.code, exc.message)
    return None


router = APIRouter()


@router.api_route("/{path:path}", methods=["GET", "PUT", "PATCH", "DELETE", "POST"])
async def arm(path: str, request: Request, context: Context) -> Response:
    refused = _authenticate(request, context)
    if refused is not None:
        return refused
    if not request.query_params.get("api-version"):
        return _error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    route = "/" + path
    match = VM.fullmatch(route) or LIST_RG.fullmatch(route) or LIST_SUB.fullmatch(route)
    if match is None:
        return _error(
            404, "InvalidResourceType", f"The resource type could not be found for path '{route}'."
        )
    sub = match.group("sub")
    if not UUID.fullmatch(sub):
        return _error(
            400,
            "InvalidSubscriptionId",
            f"The provided subscription identifier '{sub}' is malformed or invalid.",
        )
    groups = match.groupdict()
    try:
        if "name" not in groups:
            return _list(request, context.store, sub, groups.get("rg"))
        vm = (sub.lower(), groups["rg"], groups["name"])
        return await _vm(request, context, vm, groups.get("action"))
    except ArmError as exc:
        return _error(exc.status, exc.code, exc.message)


def _list(request: Request, store: VmStore, sub: str, rg: str | None) -> Response:
    if request.method != "GET":
        return _error(405, "MethodNotAllowed", "The requested method is not allowed.")
    return _answer(200, {"value": [arm_view(v) for v in store.list(sub.lower(), rg)]})


async def _vm(
    request: Request, context: AzureContext, vm: tuple[str, str, str], action: str | None
) -> Response:
    method, store = request.method, context.store
    if action is not None:
        return _vm_action(store, method, vm, action.lower())
    if method == "GET":
        expand = request.query_params.get("$expand", "")
        return _answer(
            200, arm_view(store.get(*vm), instance_view=expand.lower() == "instanceview")
        )
    if method == "DELETE":
        return _answer(200 if store.delete(*vm) else 204, None)
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        body = None
    if method == "PUT":
        record, created = store.put(*vm, body, context.clock())
        return _answer(201 if created else 200, arm_view(record))
    if method == "PATCH":
        return _answer(200, arm_view(store.patch(*vm, body)))
    return _error(405, "MethodNotAllowed", "The requested method is not allowed.")


def _vm_action(store: VmStore, method: str, vm: tuple[str, str, str], action: str) -> Response:
    if action == "instanceview" and method == "GET":
        return _answer(200, instance_view_of(store.get(*vm)))
    if action in POWER_ACTIONS and method == "POST":
        store.set_power_state(*vm, POWER_ACTIONS[action])
        return _answer(200, None)
    return _error(
        404, "InvalidResourceType", f"The resource type could not be found: '{action}'."
    )

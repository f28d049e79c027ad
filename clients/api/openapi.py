"""The OpenAPI document: what FastAPI generates, made to say what the API enforces.

- FastAPI's 422 entries become the API's 400 (``ErrorBody``); every route that takes input
  declares 400, every route 503 (Temporal unreachable), every admin route 401 and 403 (the
  token's refusals), each with ``ErrorBody``.
- ``links_to`` declares OpenAPI links from a list to the route that reads an item by id.
- Budgets are stated in the operations' descriptions (``budget_note``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from clients.api.errors import ErrorBody, error_responses

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def links_to(status: int, **links: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose ``status`` answer leads to other operations.

    Each link is ``name={"operationId": ..., "parameters": {param: "$response.body#/..."}}``.
    """
    return {"responses": {str(status): {"links": links}}}


def polled(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``openapi_extra`` (merged into ``extra``) for an admin mutation whose ``202`` leads to
    ``getOperation``: the answer's ``operation_id`` is the id to poll (its ``Location`` says the same)."""
    merged: dict[str, Any] = {**(extra or {})}
    responses = merged["responses"] = {**merged.get("responses", {})}
    responses["202"] = {**responses.get("202", {}), "links": {"getOperation": {
        "operationId": "getOperation", "parameters": {"operation_id": "$response.body#/operation_id"}}}}
    return merged


def budget_note(setting: str, default: str) -> str:
    return (
        f"Answers within its budget (`{setting}`, default {default}) with the result, or `202` with a "
        "`Location` to poll when the work goes on; a workflow that fails is answered with its failure at once."
    )


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": _ERROR_REF}}


def _fix_operation(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    takes_input = "422" in responses or "requestBody" in operation or operation.get("parameters")
    responses.pop("422", None)
    if takes_input:
        responses.setdefault("400", {"description": error_responses(400)[400]["description"]})
    statuses = ["503"] + (["401", "403"] if operation.get("security") else [])  # the admin token's refusals
    for status in statuses:
        responses.setdefault(status, {"description": error_responses(int(status))[int(status)]["description"]})
    for status, entry in responses.items():
        if int(status) >= 400 and "application/json" not in entry.get("content", {}):
            entry["content"] = _error_content()  # errors are JSON even where success is text


def build(app: FastAPI, extra_schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_schema.pop("$defs", {}))
    components["ErrorBody"] = error_schema
    components.update(extra_schemas or {})
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            _fix_operation(operation)
    return schema

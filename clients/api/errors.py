"""The API's one error body, the HTTP status of each fleetpatch error type, and the conventions
every route follows (new routes too).

Conventions
-----------
- **Error body.** Every non-2xx answer is an ``ErrorBody``: ``{"error": <type>, "reason": <text>}``
  plus, for malformed input, ``"field"`` (the first bad field, e.g. ``cloud_account``,
  ``identity.token``) and ``"details"`` (every bad field: ``loc``, ``field``, ``msg``). Answer
  errors with ``error_response(...)`` or raise ``HTTPException(status, detail=ErrorBody-dict)``.
- **400, never 422.** Declare every rule in the signature (``Path(pattern=...)``, ``Query(...)``,
  enums, ``Annotated`` pydantic fields) so FastAPI checks it before the route runs and the OpenAPI
  document states the same rule. ``RequestValidationError`` becomes a 400 ``BadRequest`` naming the
  field (``bad_request_handler``); the document's 422 entries are replaced by this 400.
  Input checked by hand (the registration body) raises ``BadInput`` and answers the same body.
- **Responses.** Declare every status a route can answer besides its success:
  ``responses=error_responses(401, 403, 404, 503)``; each gets ``ErrorBody`` as its schema. The
  app adds 400 to every route that takes input and 503 (Temporal unreachable) to every route.
- **Budgets.** Admin mutations run through ``clients.api.budget.run_within_budget``: the result
  within ``FLEETPATCH_API__ADMIN_BUDGET`` (default 10 s), else ``202`` + ``Location`` of
  ``GET /v1/admin/operations/{operation_id}``; a workflow that fails answers its failure at once.
- **Links.** A list whose items lead to a read-by-id route declares OpenAPI links with
  ``openapi_extra=links_to(...)`` (``clients.api.openapi``), so generated clients and stateful
  tests can walk from the list to the item.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from contracts.errors import IDENTITY_REFUSALS, ErrorType
from contracts.providers import Provider

_STATUS: dict[str, int] = {t.value: 401 for t in IDENTITY_REFUSALS}
_STATUS.update(
    {
        ErrorType.IDENTITY_TOO_LARGE.value: 413,
        ErrorType.TENANT_NOT_LINKED.value: 403,
        ErrorType.PATCHING_NOT_ENABLED.value: 403,
        ErrorType.PATCH_GROUP_INVALID.value: 403,
        ErrorType.INSTANCE_NOT_FOUND.value: 403,
        ErrorType.INSTANCE_NOT_RUNNING.value: 403,
        ErrorType.ALREADY_ENROLLED.value: 409,
        ErrorType.ENROLLMENT_RUNNING.value: 409,
        ErrorType.LINK_SCOPES_OVERLAP.value: 409,
        ErrorType.AGENT_REGISTRATION_TIMEOUT.value: 410,
        ErrorType.WINDOW_NOT_FOUND.value: 404,
    }
)


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where the value is: path, query, header or body, then the field")
    field: str = Field(description="the field, dotted (identity.token)")
    msg: str


class ErrorBody(BaseModel):
    """Every non-2xx answer of the API."""

    error: str = Field(description="a stable type name: BadRequest, NotFound, IdentityExpired, ...")
    reason: str = Field(description="for a human; never holds a secret")
    field: str | None = Field(default=None, description="400 only: the first malformed field")
    details: list[FieldError] | None = Field(default=None, description="400 only: every malformed field")


_DESCRIPTIONS = {
    400: "malformed input: `field` names the first bad field, `details` every one",
    401: "no bearer token, or the identity was refused",
    403: "the token may not do this, or the cloud account or VM may not enroll",
    404: "no such resource",
    409: "conflicts with the current state",
    410: "gone: the enrollment timed out",
    413: "body too large",
    429: "too many calls from this address or for this instance (`Retry-After`: seconds to wait)",
    502: "an upstream (a cloud, AWS) or the workflow failed",
    503: "Temporal is unreachable or the API lacks configuration; retry later",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with its description and the ``ErrorBody`` schema."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        out[status] = {"model": ErrorBody, "description": _DESCRIPTIONS.get(status, "error")}
        if status == 429:
            out[status]["headers"] = {"Retry-After": {"description": "seconds until a call is allowed again",
                                                      "schema": {"type": "integer", "minimum": 1}}}
    return out


def status_for(error_type: str | None) -> int:
    """4xx for what the caller can act on; 502 when an upstream (a cloud, AWS) failed."""
    return _STATUS.get(error_type or "", 502)


UPSTREAM_REASON = "an upstream service failed; retry later (the operator's logs have the details)"


def error_response(error: str, reason: str, status: int | None = None, **headers: str) -> JSONResponse:
    status = status or status_for(error)
    if status == 502:
        # Upstream failure texts (cloud APIs, AWS, internal errors) stay in the logs: they may
        # name other tenants' resources or internal addresses.
        logging.getLogger("fleetpatch.api").warning("upstream failure", extra={"error": error, "reason": reason})
        reason = UPSTREAM_REASON
    return JSONResponse({"error": error, "reason": reason}, status_code=status, headers=headers or None)


_UNION_TAGS = frozenset(p.value for p in Provider)


def _field(loc: list[str | int]) -> str:
    """``["body", "identity", "token"]`` -> ``identity.token``; the location kind is dropped."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("path", "query", "header", "body", "cookie"):
        parts = parts[1:]
        if parts and parts[0] in _UNION_TAGS:
            parts = parts[1:]  # the tag of a body discriminated by provider, not a field
    return ".".join(parts) or "body"


def field_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic/FastAPI error dicts as ``FieldError`` dicts."""
    out = []
    for e in errors:
        loc = [p if isinstance(p, int) else str(p) for p in e.get("loc", ())]
        if e.get("type") == "json_invalid":
            loc = ["body"]  # the body is not JSON at all (the position is in msg/ctx)
        elif str(e.get("type", "")).startswith("union_tag"):  # the discriminator itself is wrong
            loc.append(str((e.get("ctx") or {}).get("discriminator", "provider")).strip("'"))
        out.append({"loc": loc, "field": _field(loc), "msg": str(e.get("msg", "invalid"))})
    return out


def bad_request(reason: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    """The 400 answer: ``reason`` names the first bad field."""
    body: dict[str, Any] = {"error": "BadRequest", "reason": reason}
    if details:
        body["field"] = details[0]["field"]
        body["details"] = details
    return JSONResponse(body, status_code=400)


async def bad_request_handler(request: Any, exc: RequestValidationError) -> JSONResponse:
    details = field_errors(list(exc.errors()))
    first = details[0] if details else {"field": "body", "msg": "malformed"}
    return bad_request(f"{first['field']}: {first['msg']}", details)


class BadInput(Exception):
    """Input checked by hand is malformed: answered 400 with ``details`` (``field_errors`` shape)."""

    def __init__(self, reason: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details or []


class ServiceMisconfigured(Exception):
    """The API lacks configuration it needs for this call (answered 503, with the reason)."""

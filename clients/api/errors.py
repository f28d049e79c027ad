"""HTTP status for each fleetpatch error type, and the one error body shape the API answers."""

from __future__ import annotations

import logging

from fastapi.responses import JSONResponse

from contracts.errors import IDENTITY_REFUSALS, ErrorType

_STATUS: dict[str, int] = {t.value: 401 for t in IDENTITY_REFUSALS}
_STATUS.update(
    {
        ErrorType.IDENTITY_MALFORMED.value: 400,
        ErrorType.IDENTITY_TOO_LARGE.value: 413,
        ErrorType.TENANT_NOT_LINKED.value: 403,
        ErrorType.PATCHING_NOT_ENABLED.value: 403,
        ErrorType.PATCH_GROUP_INVALID.value: 403,
        ErrorType.INSTANCE_NOT_FOUND.value: 403,
        ErrorType.INSTANCE_NOT_RUNNING.value: 403,
        ErrorType.ALREADY_ENROLLED.value: 409,
        ErrorType.ENROLLMENT_RUNNING.value: 409,
        ErrorType.AGENT_REGISTRATION_TIMEOUT.value: 410,
        ErrorType.WINDOW_NOT_FOUND.value: 404,
    }
)


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


class ServiceMisconfigured(Exception):
    """The API lacks configuration it needs for this call (answered 503, with the reason)."""

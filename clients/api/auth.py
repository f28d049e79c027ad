"""Bearer-token authentication for the admin endpoints (declared in OpenAPI as ``adminToken``)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_BEARER = HTTPBearer(auto_error=False, scheme_name="adminToken", description="the admin token (FLEETPATCH_API__ADMIN_TOKEN)")


def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
) -> None:
    """FastAPI dependency: the request carries ``Authorization: Bearer <admin token>``.

    With no admin token configured, every admin call is refused: the admin API is closed by default.
    """
    configured = request.app.state.settings.api.admin_token
    # The raw header, not ``credentials`` (FastAPI strips it): compared exactly as sent.
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if configured is None or credentials is None or scheme.lower() != "bearer" or not presented:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail={"error": "Unauthorized", "reason": "admin endpoints need a bearer token"},
            headers={"WWW-Authenticate": "Bearer"},
        )
    # The presented value is compared exactly as sent: never stripped or normalised.
    expected = configured.get_secret_value().encode()
    if not expected or not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail={"error": "Forbidden", "reason": "that token is not the admin token"}
        )


def require_admin_or_session(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
) -> None:
    """``require_admin``, or, when no Authorization header is sent, an admin's dashboard session
    cookie: the Temporal UI calls the codec server from the admin's browser with credentials
    included, and has no way to send the admin token itself."""
    from clients.api.estate_access import COOKIE

    cookie = request.cookies.get(COOKIE)
    if "authorization" in request.headers or not cookie:
        require_admin(request, credentials)
        return
    configured = request.app.state.settings.api.admin_token
    expected = configured.get_secret_value().encode() if configured is not None else b""
    if not expected or not hmac.compare_digest(cookie.encode("utf-8", "surrogateescape"), expected):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail={"error": "Forbidden", "reason": "that session is not an admin's"}
        )

"""Bearer-token authentication for the admin endpoints."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status


def require_admin(request: Request) -> None:
    """FastAPI dependency: the request carries ``Authorization: Bearer <admin token>``.

    With no admin token configured, every admin call is refused: the admin API is closed by default.
    """
    configured = request.app.state.settings.api.admin_token
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if configured is None or scheme.lower() != "bearer" or not presented:
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

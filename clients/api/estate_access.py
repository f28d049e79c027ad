"""Who may read the estate, and the store session every estate route reads through.

A reader presents a bearer token (the API) or the dashboard's cookie: the configured admin token
reads everything; a customer token issued by ``fleetpatch tokens issue`` (stored hashed in the
estate store, resolved by ``estate.tokens.resolve``) reads its customer's rows only.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from estate import db, tokens
from estate.results import Scope

#: The dashboard keeps the token in this HttpOnly, SameSite=Strict cookie.
COOKIE = "fleetpatch_token"
_MAX_TOKEN = 512
_BEARER = HTTPBearer(auto_error=False, scheme_name="readToken",
                     description="the admin token, or a customer read token (`fleetpatch tokens issue`)")


def store(request: Request) -> sessionmaker[Session]:
    """The estate store's session factory, opened on first use from the API's settings."""
    state = request.app.state
    factory = getattr(state, "estate_sessions", None)
    if factory is None:
        factory = db.sessions(db.engine_from_settings(state.settings))
        state.estate_sessions = factory
    return factory


def session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: one read session per request."""
    with store(request)() as opened:
        yield opened


def presented_token(request: Request, cookie: bool = False) -> str | None:
    """The bearer token of the request (or, for the dashboard, its cookie); None when absent."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if cookie:
        return request.cookies.get(COOKIE) or None
    return None


def scope_of(request: Request, opened: Session, presented: str | None) -> Scope | None:
    """The scope a token grants, or None. Tokens of unexpected size are refused before any lookup."""
    if not presented or len(presented) > _MAX_TOKEN:
        return None
    configured = request.app.state.settings.api.admin_token
    if configured is not None and hmac.compare_digest(
        presented.encode(), configured.get_secret_value().encode()
    ):
        return Scope.everything(token_id="admin")
    return tokens.resolve(opened, presented)


def _unauthorized() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail={"error": "Unauthorized", "reason": "estate reads need a valid bearer token (admin or customer)"},
        headers={"WWW-Authenticate": "Bearer"},
    )


def reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    opened: Session = Depends(session),
) -> Scope:
    """FastAPI dependency of every estate read route: the caller's scope, or 401."""
    scope = scope_of(request, opened, credentials.credentials.strip() if credentials else None)
    if scope is None:
        raise _unauthorized()
    return scope

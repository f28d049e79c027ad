"""The dashboard's session: the reader's token in an HttpOnly, SameSite=Strict cookie, and CSRF.

Every form that changes something carries a CSRF value bound to the session's token (an HMAC of
it), so a page elsewhere cannot post one even if a browser sent the cookie. The sign-in form,
before any session, uses a double-submit value (a random cookie that the form repeats).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from fastapi.responses import Response

from clients.api.estate_access import COOKIE

PRE_COOKIE = "fleetpatch_signin"
PATH = "/dashboard"
#: The Temporal UI calls the API's codec server from the operator's browser with credentials
#: included (it cannot send the admin token): an admin's session cookie is also scoped to it.
CODEC_PATH = "/codec"
MAX_AGE = 8 * 3600


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"fleetpatch-dashboard-csrf", hashlib.sha256).hexdigest()


def csrf_ok(request: Request, token: str | None, presented: str | None) -> bool:
    """The form's value matches the session, and the request comes from this origin."""
    if not token or not presented or not _same_origin(request):
        return False
    return hmac.compare_digest(csrf_for(token), presented)


def signin_csrf_ok(request: Request, presented: str | None) -> bool:
    expected = request.cookies.get(PRE_COOKIE)
    if not expected or not presented or not _same_origin(request):
        return False
    return hmac.compare_digest(expected, presented)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def new_signin_value() -> str:
    return secrets.token_urlsafe(24)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def set_signin_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(PRE_COOKIE, value, max_age=600, path=PATH, httponly=True, samesite="strict",
                        secure=_secure(request))


def set_session(request: Request, response: Response, token: str, admin: bool = False) -> None:
    for path in (PATH, CODEC_PATH) if admin else (PATH,):
        response.set_cookie(COOKIE, token, max_age=MAX_AGE, path=path, httponly=True, samesite="strict",
                            secure=_secure(request))
    response.delete_cookie(PRE_COOKIE, path=PATH)


def clear_session(response: Response) -> None:
    for path in (PATH, CODEC_PATH):
        response.delete_cookie(COOKIE, path=path, httponly=True, samesite="strict")

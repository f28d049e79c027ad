"""Google's JWKS endpoint, publishing the local cloud's token signing key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from localclouds.gcp.keys import JWKS_PATH, SigningKey

router = APIRouter()


@router.get(JWKS_PATH)
def jwks(request: Request) -> JSONResponse:
    key: SigningKey = request.app.state.signing_key
    # Google answers its certs with a cache lifetime; keep the same shape and header.
    return JSONResponse(
        key.jwks(), headers={"Cache-Control": "public, max-age=3600, must-revalidate, no-transform"}
    )

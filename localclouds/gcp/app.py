"""The local GCP cloud as one ASGI app: metadata servers, Google's JWKS and Compute REST.

:func:`create_app` loads (or, on first start, generates) the signing key and the saved instances
before it returns, so a server built from it is ready, keys included, when it reports healthy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from localclouds.gcp import compute_api, metadata
from localclouds.gcp.keys import load_or_create
from localclouds.gcp.state import InstanceStore

JWKS_PATH = "/oauth2/v3/certs"
HEALTH_PATH = "/__fleetpatch/health"


def gcp_dir(state_dir: Path) -> Path:
    """Where this cloud keeps its key, JWKS and instances: ``DIR/gcp``."""
    return Path(state_dir) / "gcp"


def create_app(state_dir: Path, *, clock: Callable[[], float] = time.time) -> FastAPI:
    """The app over ``state_dir``; ``clock`` (unix seconds) stamps tokens and resources."""
    directory = gcp_dir(state_dir)
    app = FastAPI(title="fleetpatch local GCP cloud", docs_url=None, redoc_url=None)
    app.state.signing_key = load_or_create(directory)
    app.state.store = InstanceStore(directory, clock=clock)
    app.state.operations = compute_api.Operations()
    app.state.clock = clock

    @app.get(JWKS_PATH)
    def jwks() -> JSONResponse:
        # Google answers its certs with a cache lifetime; keep the same shape and header.
        return JSONResponse(
            app.state.signing_key.jwks(),
            headers={"Cache-Control": "public, max-age=3600, must-revalidate, no-transform"},
        )

    @app.get(HEALTH_PATH)
    def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    app.include_router(metadata.router)
    app.include_router(compute_api.router)
    return app

"""The local GCP cloud as one ASGI app: metadata servers, Google's JWKS and Compute REST.

:func:`create_app` loads (or, on first start, generates) the signing key and the saved instances
before it returns, so a server built from it is ready, keys included, when it reports healthy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from localclouds.gcp import compute_api, jwks, metadata
from localclouds.gcp.keys import load_or_create
from localclouds.gcp.state import InstanceStore
from localclouds.serving import emulator_app


def gcp_dir(state_dir: Path) -> Path:
    """Where this cloud keeps its key, JWKS and instances: ``DIR/gcp``."""
    return Path(state_dir) / "gcp"


def create_app(state_dir: Path, *, clock: Callable[[], float] = time.time) -> FastAPI:
    """The app over ``state_dir``; ``clock`` (unix seconds) stamps tokens and resources."""
    directory = gcp_dir(state_dir)
    return emulator_app(
        "fleetpatch local GCP cloud",
        [jwks.router, metadata.router, compute_api.router],
        signing_key=load_or_create(directory),
        store=InstanceStore(directory, clock=clock),
        operations=compute_api.Operations(),
        clock=clock,
    )

"""The one shape of every local cloud, and the one way it starts.

- An app is :func:`emulator_app`: FastAPI without docs, a router per resource, and the health
  route every local cloud shares (``GET /__fleetpatch/health`` -> 200 ``{"status": "ok"}``,
  :mod:`localclouds.addresses`). Whatever the routers need sits on ``app.state``.
- A ``__main__`` reads :func:`arguments` (``--host``, ``--port``, ``--state-dir``,
  ``--log-level``, plus its own), prepares every key and certificate, then calls :func:`run`
  with one or more :func:`listener` s: they listen in order, and SIGTERM or SIGINT stop them
  cleanly (exit status 0), never waiting long for idle keep-alive clients.
- The local AWS is moto's WSGI application behind werkzeug's threaded server: it starts through
  :func:`run_wsgi`, with the same signals and the same health route.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI

from localclouds.addresses import HEALTH_BODY, HEALTH_PATH

#: Seconds a stop waits for open connections (an idle keep-alive TLS client may never answer the
#: close, and asyncio would wait 30 s for it) before they are cut.
GRACE = 3


health_router = APIRouter()


@health_router.get(HEALTH_PATH)
def health() -> dict[str, str]:
    """200 once the process serves: every key and certificate exists before it listens."""
    return dict(HEALTH_BODY)


def emulator_app(
    title: str,
    routers: Iterable[APIRouter],
    *,
    lifespan: Callable[[FastAPI], Any] | None = None,
    **state: Any,
) -> FastAPI:
    """A local cloud's app: the health route, then ``routers``; ``state`` goes on ``app.state``."""
    app = FastAPI(title=title, openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)
    for name, value in state.items():
        setattr(app.state, name, value)
    app.include_router(health_router)
    for router in routers:
        app.include_router(router)
    return app


def arguments(
    module: str, description: str | None, port: int, *, log_level: bool = True
) -> argparse.ArgumentParser:
    """The options every local cloud takes (``--log-level`` is uvicorn's, so only where uvicorn
    serves); its ``__main__`` adds its own."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--state-dir", type=Path, default=Path(".fleetpatch"))
    if log_level:
        parser.add_argument("--log-level", default="warning")
    return parser


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal capture (which re-raises the signal after shutdown)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listener(app: Any, host: str, port: int, log_level: str = "warning", **options: Any) -> uvicorn.Config:
    """A listener's configuration: no Server header (emulators answer with the real one's)."""
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, server_header=False,
        timeout_graceful_shutdown=GRACE, **options,
    )


async def serve(*listeners: uvicorn.Config) -> None:
    """Serve every listener until SIGTERM/SIGINT. They start in order, each once the previous
    one listens, so a health endpoint on the last one answering means all of them are up."""
    servers = [QuietServer(config) for config in listeners]

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    tasks = []
    for server, config in zip(servers, listeners, strict=True):
        task = asyncio.create_task(server.serve())
        tasks.append(task)
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if not server.started:
            stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise SystemExit(f"could not listen on {config.host}:{config.port}")
    await asyncio.gather(*tasks)


def run(*listeners: uvicorn.Config) -> None:
    asyncio.run(serve(*listeners))


def run_wsgi(server: Any) -> None:
    """Serve a werkzeug (``socketserver``) server until SIGTERM/SIGINT, then close it without
    waiting for request threads that sit on idle keep-alive connections."""
    server.daemon_threads = True
    server.block_on_close = False

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger(__name__).info("serving on %s:%s", *server.server_address[:2])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

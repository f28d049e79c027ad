"""How the uvicorn-based local clouds serve: one or more listeners in one process, stopped
cleanly (exit status 0) by SIGTERM or SIGINT, never waiting long for idle keep-alive clients."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn

#: Seconds a stop waits for open connections (an idle keep-alive TLS client may never answer the
#: close, and asyncio would wait 30 s for it) before they are cut.
GRACE = 3


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

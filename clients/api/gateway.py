"""The API's handle on Temporal: connects lazily, reconnects after failures, never blocks start-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client

from config.settings import Settings
from config.temporal import connect

log = logging.getLogger("fleetpatch.api")

ClientFactory = Callable[[], Awaitable[Client]]


class TemporalUnavailable(Exception):
    """Temporal cannot be reached now; the API answers 503."""


class TemporalGateway:
    def __init__(self, factory: ClientFactory) -> None:
        self._factory = factory
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_environment(cls, settings: Settings | Path, **overrides: Any) -> TemporalGateway:
        """Connect with Temporal's environment configuration and the payload codec (``overrides``:
        interceptors, runtime)."""
        return cls(lambda: connect(settings, **overrides))

    @classmethod
    def for_client(cls, client: Client) -> TemporalGateway:
        gateway = cls(lambda: _already(client))
        gateway._client = client
        return gateway

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(self._factory(), timeout=5)
                except Exception as err:
                    log.warning("temporal unavailable", extra={"error": str(err)})
                    raise TemporalUnavailable(str(err)) from err
        return self._client

    async def healthy(self) -> tuple[bool, str]:
        try:
            client = await self.client()
            await asyncio.wait_for(client.service_client.check_health(), timeout=3)
        except TemporalUnavailable:
            return False, "unreachable"  # the cause is logged, never answered (addresses, TLS)
        except Exception as err:
            log.warning("temporal unhealthy", extra={"error": str(err)})
            return False, "unhealthy"
        return True, "ok"


async def _already(client: Client) -> Client:
    return client

"""The ping every worker answers on its own task queue (used by ``fleetpatch doctor``)."""

from __future__ import annotations

import os
import socket
from importlib import metadata

from temporalio import activity

from contracts.models import ActivityName, PingInput, PingResult
from contracts.providers import WorkerRole


def _version() -> str:
    try:
        return metadata.version("fleetpatch")
    except metadata.PackageNotFoundError:
        return "dev"


class HealthActivities:
    def __init__(self, role: WorkerRole, task_queue: str) -> None:
        self._role = role
        self._task_queue = task_queue
        self._version = _version()

    @activity.defn(name=ActivityName.PING)
    async def ping(self, inp: PingInput) -> PingResult:
        return PingResult(
            role=self._role,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            task_queue=self._task_queue,
            version=self._version,
        )

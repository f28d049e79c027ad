"""What the local Azure routers read, kept on ``app.state.azure`` of both listeners."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from localclouds.azure.material import AzureMaterial
from localclouds.azure.vms import VmStore


@dataclass(frozen=True)
class AzureContext:
    material: AzureMaterial
    store: VmStore
    clock: Callable[[], datetime]


def _context(request: Request) -> AzureContext:
    return request.app.state.azure


#: A route parameter of this type receives the listener's context.
Context = Annotated[AzureContext, Depends(_context)]

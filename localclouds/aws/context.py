"""The per-request context every intercepted handler receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from localclouds.aws.auth import Caller


@dataclass(frozen=True)
class RequestContext:
    caller: Caller
    now: datetime
    environ: dict[str, Any]
    body: bytes
    base_url: str  # how the client reached us, e.g. http://127.0.0.1:8701

    @property
    def account_id(self) -> str:
        return self.caller.account_id

    @property
    def region(self) -> str:
        return self.caller.region


class PassToMoto:
    """Returned by a handler that decides, after reading the body, that moto should answer."""


PASS_TO_MOTO = PassToMoto()

Handler = Callable[[RequestContext, dict[str, Any]], "dict[str, Any] | PassToMoto"]

"""Rate limits of the unauthenticated routes: per source address and per instance.

Token buckets in memory (per API process): ``limit`` calls per ``window``, refilled evenly. A call
over its budget is answered ``429`` with ``Retry-After`` (whole seconds until one call is allowed
again) before any other work. Limits (``FLEETPATCH_API__RATE_PER_ADDRESS``,
``FLEETPATCH_API__RATE_PER_INSTANCE``, ``FLEETPATCH_API__RATE_WINDOW``; 0 turns a limit off):

- per source address (the peer address; behind a TLS proxy, uvicorn's ``--forwarded-allow-ips``
  makes it the client's): every call of ``/v1/challenge``, ``/v1/registrations``,
  ``/v1/enrollments/{id}`` and ``/v1/startup/{provider}``;
- per instance: registrations whose identity was verified (so forgeries naming a VM cannot spend
  that VM's budget), and polls of one enrollment id (whose secret a forger does not hold).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse

from clients.api.errors import error_response

#: buckets kept per limiter; the least recently used go first past it (a flood of addresses
#: cannot grow memory without bound)
MAX_KEYS = 100_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, limit: int, window_seconds: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._rate = limit / window_seconds if window_seconds > 0 else 0.0
        self._monotonic = monotonic
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def retry_after(self, key: str) -> int | None:
        """Take one call from ``key``'s budget: None when allowed, else the seconds to wait."""
        if self.limit <= 0 or self._rate <= 0:
            return None
        now = self._monotonic()
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.limit), now)
        bucket.tokens = min(float(self.limit), bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        self._buckets[key] = bucket
        while len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / self._rate))


class RateLimits:
    """The two limiters of one API process."""

    def __init__(self, per_address: int, per_instance: int, window_seconds: float) -> None:
        self.address = RateLimiter(per_address, window_seconds)
        self.instance = RateLimiter(per_instance, window_seconds)


def too_many(what: str, seconds: int) -> JSONResponse:
    return error_response("TooManyRequests", f"too many calls {what}; retry after {seconds} s", 429,
                          **{"Retry-After": str(seconds)})


def _limits(request: Request) -> RateLimits:
    return request.app.state.rate_limits


def check_address(request: Request) -> JSONResponse | None:
    """The caller's address budget: None, or the 429 to answer."""
    host = request.client.host if request.client else "unknown"
    wait = _limits(request).address.retry_after(host)
    return too_many("from this address", wait) if wait is not None else None


def check_instance(request: Request, key: str) -> JSONResponse | None:
    """One instance's budget (a verified instance key, or an enrollment id): None, or the 429."""
    wait = _limits(request).instance.retry_after(key)
    return too_many("for this instance", wait) if wait is not None else None


class AddressLimited(Exception):
    """Raised by the route dependency: answered with its 429."""

    def __init__(self, response: JSONResponse) -> None:
        self.response = response


async def limit_address(request: Request) -> None:
    """A route dependency: the source address's budget before anything else."""
    refused = check_address(request)
    if refused is not None:
        raise AddressLimited(refused)

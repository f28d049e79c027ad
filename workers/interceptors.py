"""The interceptors of every worker: errors mapped in one place, and liveness heartbeats.

A ``FleetpatchError`` raised by any activity becomes ``ApplicationError(reason, type=...)``:
refusals are non-retryable, transient cloud errors retry under the activity's retry policy.

An activity scheduled with a heartbeat timeout is heartbeaten by its worker while it runs (a
third of the timeout apart, repeating the last details the activity itself sent): one blocked in
a single cloud call still proves its worker alive, and one whose worker died is retried
elsewhere after the heartbeat timeout instead of its whole start-to-close timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from contracts.errors import ErrorType, FleetpatchError

#: "Not ready yet" answers of polling activities: expected, retried, not worth an error log.
BENIGN = frozenset({ErrorType.ACCOUNT_NOT_READY, ErrorType.AGENT_NOT_READY})


def to_application_error(err: FleetpatchError) -> ApplicationError:
    return ApplicationError(
        err.reason,
        type=err.type.value,
        non_retryable=not err.retryable,
        category=ApplicationErrorCategory.BENIGN if err.type in BENIGN else ApplicationErrorCategory.UNSPECIFIED,
    )


class _MapErrors(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self.next.execute_activity(input)
        except FleetpatchError as err:
            activity.logger.info(
                "activity refused", extra={"error_type": err.type.value, "activity": activity.info().activity_type}
            )
            raise to_application_error(err) from None


class _Remembered(ActivityOutboundInterceptor):
    """The activity's own heartbeats, remembered so that liveness beats repeat their details."""

    def __init__(self, next: ActivityOutboundInterceptor) -> None:
        super().__init__(next)
        self.details: tuple[Any, ...] = ()

    def heartbeat(self, *details: Any) -> None:
        self.details = details
        self.next.heartbeat(*details)


class _Liveness(ActivityInboundInterceptor):
    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        self._outbound = _Remembered(outbound)
        super().init(self._outbound)

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        timeout = activity.info().heartbeat_timeout
        if not timeout:
            return await self.next.execute_activity(input)
        beating = asyncio.create_task(self._beat(timeout.total_seconds() / 3))
        try:
            return await self.next.execute_activity(input)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def _beat(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self._outbound.next.heartbeat(*self._outbound.details)


class ErrorMappingInterceptor(Interceptor):
    """Errors mapped, and liveness heartbeats (every worker installs this one interceptor)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _MapErrors(_Liveness(next))

"""Turn the project's own errors into Temporal application errors, in one place for every worker.

A ``FleetpatchError`` raised by any activity becomes ``ApplicationError(reason, type=...)``:
refusals are non-retryable, transient cloud errors retry under the activity's retry policy.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

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


class ErrorMappingInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _MapErrors(next)

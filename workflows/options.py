"""Activity option presets. Workflows use these names, never literal timeouts or retry policies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import RetryPolicy

from contracts.errors import RETRYABLE, ErrorType

#: Business refusals and configuration errors never retry, whatever activity raised them.
NON_RETRYABLE: list[str] = [t.value for t in ErrorType if t not in RETRYABLE]


@dataclass(frozen=True)
class ActivityPreset:
    start_to_close: timedelta
    retry: RetryPolicy
    schedule_to_close: timedelta | None = None
    heartbeat: timedelta | None = None

    def kwargs(self) -> dict:
        kw: dict = {"start_to_close_timeout": self.start_to_close, "retry_policy": self.retry}
        if self.schedule_to_close is not None:
            kw["schedule_to_close_timeout"] = self.schedule_to_close
        if self.heartbeat is not None:
            kw["heartbeat_timeout"] = self.heartbeat
        return kw


#: A round trip to a worker: doctor pings. No retries: an absent worker must show as absent.
PING = ActivityPreset(
    start_to_close=timedelta(seconds=5),
    retry=RetryPolicy(maximum_attempts=1),
)

#: Identity verification and metadata reads on a provider's queue: quick, retried on transient
#: cloud errors for a few minutes, never on refusals.
CLOUD_READ = ActivityPreset(
    start_to_close=timedelta(seconds=30),
    schedule_to_close=timedelta(minutes=5),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        non_retryable_error_types=NON_RETRYABLE,
    ),
)

#: AWS control-plane calls (Organizations, IAM, SSM): idempotent "ensure" steps, patient retries
#: because throttling and eventual consistency are normal there.
AWS_CONTROL = ActivityPreset(
    start_to_close=timedelta(minutes=2),
    schedule_to_close=timedelta(minutes=30),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        non_retryable_error_types=NON_RETRYABLE,
    ),
)

#: "Not ready yet" polling (account creation, agent registration): a benign error retried on a
#: flat backoff. The caller bounds it with schedule_to_close.
POLL_FLAT = ActivityPreset(
    start_to_close=timedelta(seconds=30),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=5),
        backoff_coefficient=1.0,
        non_retryable_error_types=NON_RETRYABLE,
    ),
)

#: ComplianceSync: reading one systems account's SSM state and applying it to the estate store.
#: Heartbeats per instance; a few attempts, then the account is reported failed for this run
#: (the next run tries again).
ESTATE_SYNC = ActivityPreset(
    start_to_close=timedelta(minutes=15),
    heartbeat=timedelta(minutes=2),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=5),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=3,
        non_retryable_error_types=NON_RETRYABLE,
    ),
)

#: One short write to the estate store (aggregates, window results).
ESTATE_WRITE = ActivityPreset(
    start_to_close=timedelta(minutes=2),
    schedule_to_close=timedelta(minutes=10),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        non_retryable_error_types=NON_RETRYABLE,
    ),
)

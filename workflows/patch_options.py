"""Activity option presets of patch windows (the same shape as ``workflows.options``).

SSM throttles per account and API; the aws worker paces its calls (token buckets), and what gets
throttled anyway (``AwsThrottled``) retries here with backoff. Refusals never retry.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from workflows.options import NON_RETRYABLE, ActivityPreset

_PATIENT = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=NON_RETRYABLE,
)

#: SendCommand / CancelCommand / the ring records: one call each, retried patiently.
SSM_CALL = ActivityPreset(start_to_close=timedelta(minutes=2), schedule_to_close=timedelta(minutes=30), retry=_PATIENT)

#: Target resolution and collection page through thousands of instances: long, heartbeating.
SSM_SWEEP = ActivityPreset(
    start_to_close=timedelta(minutes=30),
    schedule_to_close=timedelta(hours=2),
    heartbeat=timedelta(minutes=2),
    retry=_PATIENT,
)


def poll(wait_seconds: int) -> dict:
    """A poll waits (heartbeating) up to ``wait_seconds`` for a change, then answers."""
    return ActivityPreset(
        start_to_close=timedelta(seconds=wait_seconds + 120),
        schedule_to_close=timedelta(seconds=wait_seconds + 1800),
        heartbeat=timedelta(seconds=60),
        retry=_PATIENT,
    ).kwargs()

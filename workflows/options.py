"""Every option preset of fleetpatch's workflows: activity timeouts and retry policies, polling,
the schedule-ensure local activity and child workflows.

Workflows pass these names to ``workflows.calls``; no other module in ``workflows/`` writes a
timeout or a retry policy. A preset that depends on the run (a poll's wait, a caller's deadline)
is a function of that value here, never a literal at the call site.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.workflow import ParentClosePolicy

from contracts.errors import RETRYABLE, ErrorType

#: Business refusals and configuration errors never retry, whatever activity raised them.
NON_RETRYABLE: tuple[str, ...] = tuple(t.value for t in ErrorType if t not in RETRYABLE)


@dataclass(frozen=True)
class ActivityPreset:
    retry: RetryPolicy
    start_to_close: timedelta | None = None
    schedule_to_close: timedelta | None = None
    heartbeat: timedelta | None = None

    def kwargs(self) -> dict:
        kw: dict = {"retry_policy": self.retry}
        if self.start_to_close is not None:
            kw["start_to_close_timeout"] = self.start_to_close
        if self.schedule_to_close is not None:
            kw["schedule_to_close_timeout"] = self.schedule_to_close
        if self.heartbeat is not None:
            kw["heartbeat_timeout"] = self.heartbeat
        return kw

    def local_kwargs(self) -> dict:
        """The same options for a local activity (which has no heartbeat)."""
        kw = self.kwargs()
        kw.pop("heartbeat_timeout", None)
        return kw


@dataclass(frozen=True)
class ChildPreset:
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE
    execution_timeout: timedelta | None = None

    def kwargs(self) -> dict:
        kw: dict = {"id_reuse_policy": self.id_reuse_policy, "parent_close_policy": self.parent_close_policy}
        if self.execution_timeout is not None:
            kw["execution_timeout"] = self.execution_timeout
        return kw


# --- enrollment and accounts ---------------------------------------------------------------

#: How soon an activity whose worker died is retried elsewhere: every worker heartbeats the
#: activities it runs (``workers.interceptors``), so a dead one is noticed after this, not after
#: the activity's whole start-to-close timeout.
LIVENESS = timedelta(seconds=10)

#: Identity verification and metadata reads on a provider's queue: quick, retried on transient
#: cloud errors for a few minutes, never on refusals.
CLOUD_READ = ActivityPreset(
    start_to_close=timedelta(seconds=30),
    schedule_to_close=timedelta(minutes=5),
    heartbeat=LIVENESS,
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        non_retryable_error_types=NON_RETRYABLE,
    ),
)

#: Listing every VM of a cloud account (reconcile): pages through the cloud's API, so longer than
#: a single read, and retried on transient cloud errors like one.
CLOUD_LIST = ActivityPreset(
    start_to_close=timedelta(minutes=10),
    schedule_to_close=timedelta(minutes=30),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        non_retryable_error_types=NON_RETRYABLE,
    ),
)

_PATIENT = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=NON_RETRYABLE,
)

#: AWS control-plane calls (Organizations, IAM, SSM): idempotent "ensure" steps, patient retries
#: because throttling and eventual consistency are normal there.
AWS_CONTROL = ActivityPreset(
    start_to_close=timedelta(minutes=2), schedule_to_close=timedelta(minutes=30), heartbeat=LIVENESS, retry=_PATIENT
)

#: "Not ready yet" polling (account creation, agent registration): a benign error retried on a
#: flat backoff, bounded by the caller's deadline.
_POLL_FLAT = ActivityPreset(
    start_to_close=timedelta(seconds=30),
    heartbeat=LIVENESS,
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=5),
        backoff_coefficient=1.0,
        non_retryable_error_types=NON_RETRYABLE,
    ),
)

#: How long account creation may take before the vending fails (real AWS: usually minutes).
CREATE_ACCOUNT_TIMEOUT = timedelta(hours=1)


def poll_flat(deadline: timedelta) -> ActivityPreset:
    """Flat-backoff polling that gives up after ``deadline`` (the last cause says why)."""
    return replace(_POLL_FLAT, schedule_to_close=deadline)


#: Waiting for a VM's SSM agent. Every retry is an activity task the server dispatches, and an
#: enrollment may wait for its agent for half an hour: the first polls come as soon as the flat
#: poll's (a normal agent reports within seconds of its answer), then the interval grows by half
#: each time to a minute, so an agent that stays away costs a poll a minute, not twelve.
#: Attempts at 0, 5, 12.5, 24, 41, 66, 104, 161 s, then every 60 s: 35 in 30 minutes, not 360.
_POLL_AGENT = replace(
    _POLL_FLAT,
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=5),
        backoff_coefficient=1.5,
        maximum_interval=timedelta(seconds=60),
        non_retryable_error_types=NON_RETRYABLE,
    ),
)


def poll_agent(deadline: timedelta) -> ActivityPreset:
    """Polling for an agent to come online, backing off to a poll a minute; gives up after ``deadline``."""
    return replace(_POLL_AGENT, schedule_to_close=deadline)


def ping(budget: timedelta) -> ActivityPreset:
    """A doctor's round trip to a worker: one attempt, and waiting for a poller is what it
    measures, so the whole budget is schedule-to-close. An absent worker shows as absent."""
    return ActivityPreset(schedule_to_close=budget, retry=RetryPolicy(maximum_attempts=1))


def await_workflow(deadline: timedelta | None) -> ActivityPreset:
    """Waiting (heartbeating) for a shared workflow another caller started; only an unavailable
    cloud retries, every business failure of that workflow is final."""
    return ActivityPreset(
        start_to_close=deadline or timedelta(hours=2),
        heartbeat=timedelta(seconds=30),
        retry=RetryPolicy(
            initial_interval=timedelta(seconds=2),
            maximum_interval=timedelta(seconds=30),
            non_retryable_error_types=[t.value for t in ErrorType if t.value != ErrorType.CLOUD_UNAVAILABLE],
        ),
    )


#: Reading the shared children's completed results (a local activity: two quick reads of Temporal
#: itself). Brief retries; past them the enrollment takes the shared-child path, which never needs it.
KNOWN_SETUP = ActivityPreset(
    start_to_close=timedelta(seconds=5),
    schedule_to_close=timedelta(seconds=15),
    retry=RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=2)),
)

#: Ensuring an account's window schedules (a local activity: schedule RPCs are quick), retried
#: while Temporal itself is briefly unavailable; best effort, so it never holds vending for long.
ENSURE_SCHEDULES = ActivityPreset(
    start_to_close=timedelta(seconds=30),
    schedule_to_close=timedelta(minutes=2),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        non_retryable_error_types=NON_RETRYABLE,
    ),
)

#: A child other workflows share by id (systems account, SSM configuration): it outlives the
#: parent that started it, and only a failed run is replaced.
SHARED_CHILD = ChildPreset(
    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    parent_close_policy=ParentClosePolicy.ABANDON,
)

# --- patch windows ----------------------------------------------------------------------------
# SSM throttles per account and API; the aws worker paces its calls (token buckets), and what gets
# throttled anyway (``AwsThrottled``) retries here with backoff. Refusals never retry.

#: SendCommand / CancelCommand / the ring records: one call each, retried patiently.
SSM_CALL = ActivityPreset(start_to_close=timedelta(minutes=2), schedule_to_close=timedelta(minutes=30), retry=_PATIENT)

#: Target resolution and collection page through thousands of instances: long, heartbeating.
SSM_SWEEP = ActivityPreset(
    start_to_close=timedelta(minutes=30),
    schedule_to_close=timedelta(hours=2),
    heartbeat=timedelta(minutes=2),
    retry=_PATIENT,
)


def ssm_poll(wait_seconds: int) -> ActivityPreset:
    """A poll waits (heartbeating) up to ``wait_seconds`` for a change, then answers."""
    return ActivityPreset(
        start_to_close=timedelta(seconds=wait_seconds + 120),
        schedule_to_close=timedelta(seconds=wait_seconds + 1800),
        heartbeat=timedelta(seconds=60),
        retry=_PATIENT,
    )


#: Reading every account's ring records and copying a customer train reads several accounts.
CUSTOMER_RINGS_CALL = ActivityPreset(start_to_close=timedelta(minutes=5), schedule_to_close=timedelta(minutes=30),
                                     retry=_PATIENT)

#: How often a later ring looks again while the earlier ring still runs in some account.
RING_WAIT_POLL = timedelta(minutes=5)

#: One batch of a patch window: an ordinary child (closed with its window).
BATCH_CHILD = ChildPreset()

#: The shortest wait a workflow arms (a timer of zero would not wait at all).
MIN_WAIT = timedelta(seconds=1)

# --- the estate store ---------------------------------------------------------------------------

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

#: One short write to the estate store (aggregates, a window's results), retried patiently
#: while the database is briefly unavailable.
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

"""Run Command and patch states in a systems account, paced so SSM throttling is not hit.

Every call takes a token from a per-(account, kind) bucket first: SSM's limits are per account
and API, so a window over 10,000 instances (200 SendCommands, hundreds of pages) spreads its
calls instead of bursting. What gets throttled anyway maps to ``AwsThrottled`` and retries.

SendCommand is not idempotent: each command carries its idempotency key as its Comment, and a
retried send first looks for a command it may already have made.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clouds.aws.errors import aws_call
from clouds.aws.sessions import AwsSessions
from contracts.enrollment import TAG_PATCH_GROUP, AccountRef
from contracts.patch_batches import CommandProgress, CommandSpec
from contracts.patching import MAX_INSTANCE_IDS_PER_COMMAND, UNKNOWN_OS, InstanceStatus, PatchRef
from contracts.providers import OsFamily

SEND = "send"  # SendCommand, CancelCommand
READ = "read"  # List*, Describe*
_COMMENT_LIMIT = 100


class RateLimiter:
    """Token buckets keyed by (account, kind), shared by the worker's activity threads."""

    def __init__(
        self,
        rates: dict[str, float],
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rates = rates
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # key -> (tokens, at)

    def acquire(self, account_id: str, kind: str) -> float:
        """Wait for a token; returns the seconds waited."""
        rate = self._rates[kind]
        capacity = max(1.0, self._burst)
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                tokens, at = self._buckets.get((account_id, kind), (capacity, now))
                tokens = min(capacity, tokens + (now - at) * rate)
                if tokens >= 1.0:
                    self._buckets[(account_id, kind)] = (tokens - 1.0, now)
                    return waited
                self._buckets[(account_id, kind)] = (tokens, now)
                delay = (1.0 - tokens) / rate
            self._sleep(delay)
            waited += delay


@dataclass
class Invocation:
    instance_id: str
    status: str
    details: str
    output: str = ""


def comment_for(key: str) -> str:
    """SSM Comments hold 100 characters: long keys keep their start and a digest."""
    if len(key) <= _COMMENT_LIMIT:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[:_COMMENT_LIMIT - 33]}~{digest}"


def os_of_platform(platform_name: str | None, platform_version: str | None = None) -> str:
    """The OsFamily value of an SSM PlatformName/PlatformVersion, or ``unknown``."""
    name = (platform_name or "").strip().lower()
    version = (platform_version or "").strip()
    prefixes = (
        ("microsoft windows", OsFamily.WINDOWS), ("windows", OsFamily.WINDOWS), ("ubuntu", OsFamily.UBUNTU),
        ("debian", OsFamily.DEBIAN), ("centos", OsFamily.CENTOS), ("red hat", OsFamily.RHEL),
        ("rhel", OsFamily.RHEL), ("oracle", OsFamily.ORACLE),
    )
    for prefix, family in prefixes:
        if name.startswith(prefix):
            return family.value
    if name.startswith("amazon linux ami") or (name.startswith("amazon linux") and version.startswith("201")):
        return OsFamily.AMAZON_LINUX.value
    if name.startswith("amazon linux") and version.split(".")[0] == "2":
        return OsFamily.AMAZON_LINUX_2.value
    return UNKNOWN_OS


def classify(invocation: Invocation) -> tuple[InstanceStatus, str]:
    """An invocation's final state as a window reports it, with the reason."""
    status, details = invocation.status, invocation.details
    if status == "Success":
        return InstanceStatus.SUCCEEDED, ""
    if details == "Delivery Timed Out":
        return InstanceStatus.NOT_DELIVERED, "not delivered before the cutoff (instance offline?)"
    if details == "Undeliverable":
        return InstanceStatus.NOT_DELIVERED, "undeliverable: the instance was deregistered"
    if details == "Execution Timed Out":
        return InstanceStatus.FAILED, "execution timed out" + _tail(invocation.output)
    if status == "Failed":
        return InstanceStatus.FAILED, f"command failed ({details})" + _tail(invocation.output)
    if details == "Terminated":
        return InstanceStatus.CANCELLED, "not started: max errors reached"
    if status == "Cancelled":
        return InstanceStatus.CANCELLED, "not started when dispatch stopped; cancelled"
    return InstanceStatus.IN_PROGRESS, f"still {details or status} when the window ended"


def _tail(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return f": {lines[-1][:300]}" if lines else ""



def whole_second(moment: datetime) -> datetime:
    """A window's start as SSM compares it: SSM's times (InstalledTime, OperationStartTime) have
    whole seconds, so what happened in the second the window opened belongs to the window."""
    return moment.replace(microsecond=0)

class SsmCommands:
    def __init__(self, sessions: AwsSessions, limiter: RateLimiter) -> None:
        self._sessions = sessions
        self._limiter = limiter

    def _ssm(self, account: AccountRef) -> Any:
        return self._sessions.in_account("ssm", account.role_arn, account.external_id, account.region)

    def _call(self, account: AccountRef, kind: str, action: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        self._limiter.acquire(account.account_id, kind)
        with aws_call(f"ssm:{action}"):
            return fn(**kwargs)

    def _pages(self, account: AccountRef, action: str, fn: Callable[..., Any], **kwargs: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            page = self._call(account, READ, action, fn, **kwargs, **({"NextToken": token} if token else {}))
            yield page
            token = page.get("NextToken")
            if not token:
                return

    # --- targets -----------------------------------------------------------------------------

    def targets(self, account: AccountRef, group: str, on_page: Callable[[], None] = lambda: None) -> dict[str, list[str]]:
        """Online managed instances (hybrid ``mi-`` and EC2 ``i-``) tagged with the patch group."""
        ssm = self._ssm(account)
        found: dict[str, list[str]] = {}
        for page in self._pages(
            account, "DescribeInstanceInformation", ssm.describe_instance_information,
            Filters=[{"Key": f"tag:{TAG_PATCH_GROUP}", "Values": [group]}, {"Key": "PingStatus", "Values": ["Online"]}],
            MaxResults=50,
        ):
            for info in page.get("InstanceInformationList", []):
                os = os_of_platform(info.get("PlatformName"), info.get("PlatformVersion"))
                found.setdefault(os, []).append(info["InstanceId"])
            on_page()
        return {os: sorted(set(ids)) for os, ids in sorted(found.items())}

    # --- commands ----------------------------------------------------------------------------

    def send(self, account: AccountRef, spec: CommandSpec, *, delivery_timeout_seconds: int,
             sent_after: datetime | None = None, retrying: bool = False) -> str:
        """SendCommand for at most 50 instance ids; a retry adopts the command it already made."""
        if not 1 <= len(spec.instance_ids) <= MAX_INSTANCE_IDS_PER_COMMAND:
            raise ValueError(f"a command names 1 to {MAX_INSTANCE_IDS_PER_COMMAND} instances, not {len(spec.instance_ids)}")
        comment = comment_for(spec.key)
        if retrying:
            existing = self.find_by_comment(account, comment, spec.document, sent_after)
            if existing:
                return existing
        ssm = self._ssm(account)
        sent = self._call(
            account, SEND, "SendCommand", ssm.send_command,
            InstanceIds=list(spec.instance_ids),
            DocumentName=spec.document,
            Parameters=spec.parameters(),
            MaxConcurrency=spec.max_concurrency,
            MaxErrors=spec.max_errors,
            TimeoutSeconds=max(30, delivery_timeout_seconds),
            Comment=comment,
        )
        return sent["Command"]["CommandId"]

    def find_by_comment(self, account: AccountRef, comment: str, document: str, sent_after: datetime | None) -> str | None:
        ssm = self._ssm(account)
        filters = [{"key": "DocumentName", "value": document}]
        if sent_after is not None:
            filters.append({"key": "InvokedAfter", "value": sent_after.strftime("%Y-%m-%dT%H:%M:%SZ")})
        for page in self._pages(account, "ListCommands", ssm.list_commands, Filters=filters, MaxResults=50):
            for command in page.get("Commands", []):
                if command.get("Comment") == comment:
                    return command["CommandId"]
        return None

    def progress(self, account: AccountRef, command_ids: list[str]) -> list[CommandProgress]:
        ssm = self._ssm(account)
        found: list[CommandProgress] = []
        for command_id in command_ids:
            listed = self._call(account, READ, "ListCommands", ssm.list_commands, CommandId=command_id)["Commands"]
            command = listed[0]
            found.append(
                CommandProgress(
                    command_id=command_id,
                    status=command.get("Status", "Pending"),
                    target_count=command.get("TargetCount", 0),
                    completed_count=command.get("CompletedCount", 0),
                    error_count=command.get("ErrorCount", 0),
                )
            )
        return found

    def invocations(self, account: AccountRef, command_id: str) -> list[Invocation]:
        ssm = self._ssm(account)
        found: list[Invocation] = []
        for page in self._pages(account, "ListCommandInvocations", ssm.list_command_invocations,
                                CommandId=command_id, Details=True, MaxResults=50):
            for row in page.get("CommandInvocations", []):
                output = "\n".join(p.get("Output", "") for p in row.get("CommandPlugins", []))
                found.append(Invocation(row["InstanceId"], row.get("Status", ""), row.get("StatusDetails", ""), output))
        return found

    def cancel_pending(self, account: AccountRef, command_id: str) -> int:
        """Cancel the invocations of a command that have not started; started ones finish."""
        waiting = [i.instance_id for i in self.invocations(account, command_id) if i.status in ("Pending", "Delayed")]
        if waiting:
            ssm = self._ssm(account)
            for start in range(0, len(waiting), MAX_INSTANCE_IDS_PER_COMMAND):
                self._call(account, SEND, "CancelCommand", ssm.cancel_command,
                           CommandId=command_id, InstanceIds=waiting[start:start + MAX_INSTANCE_IDS_PER_COMMAND])
        return len(waiting)

    # --- patch states ------------------------------------------------------------------------

    def patch_states(self, account: AccountRef, instance_ids: list[str]) -> dict[str, dict[str, Any]]:
        ssm = self._ssm(account)
        states: dict[str, dict[str, Any]] = {}
        for start in range(0, len(instance_ids), MAX_INSTANCE_IDS_PER_COMMAND):
            chunk = instance_ids[start:start + MAX_INSTANCE_IDS_PER_COMMAND]
            for page in self._pages(account, "DescribeInstancePatchStates", ssm.describe_instance_patch_states,
                                    InstanceIds=chunk, MaxResults=50):
                for state in page.get("InstancePatchStates", []):
                    states[state["InstanceId"]] = state
        return states

    def patches_since(self, account: AccountRef, instance_id: str, since: datetime | None) -> tuple[list[PatchRef], list[PatchRef]]:
        """Patches an instance reports installed (at or after ``since``) and failed.

        InstalledTime has whole seconds (the package manager's install time), so ``since`` is taken
        to its whole second: a patch installed in the very second the window opened is this
        window's."""
        since = whole_second(since) if since is not None else None
        ssm = self._ssm(account)
        installed: list[PatchRef] = []
        failed: list[PatchRef] = []
        for page in self._pages(
            account, "DescribeInstancePatches", ssm.describe_instance_patches, InstanceId=instance_id,
            Filters=[{"Key": "State", "Values": ["Installed", "InstalledPendingReboot", "Failed"]}], MaxResults=100,
        ):
            for patch in page.get("Patches", []):
                ref = PatchRef(id=patch["KBId"], title=patch.get("Title", ""))
                if patch.get("State") == "FAILED":
                    failed.append(ref)
                    continue
                when = patch.get("InstalledTime")
                if since is None or (when is not None and when >= since):
                    installed.append(ref)
        return installed, failed

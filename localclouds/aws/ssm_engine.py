"""The Run Command status machine, advanced lazily on every SSM/ec2messages request.

Rules enforced the way SSM documents them:
- MaxConcurrency: at most N invocations dispatched and unfinished at a time; the rest wait
  (Pending) in target order.
- MaxErrors: once more than N invocations failed (Failed or Execution Timed Out), nothing more is
  dispatched; waiting invocations end Cancelled/"Terminated" and the command ends Failed.
- TimeoutSeconds is the delivery timeout: an invocation the agent has not started by
  RequestedDateTime + TimeoutSeconds ends TimedOut/"Delivery Timed Out" (not an error).
- Execution timeout: a started invocation not finished within the document's execution timeout
  ends TimedOut/"Execution Timed Out" (an error).
- Delayed: dispatched to an instance that is ConnectionLost; Undeliverable: the instance was
  deregistered before the command started.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import datetime

from localclouds.aws.protocol import AwsError, iso8601
from localclouds.aws.ssm_state import Command, Invocation, Message, RegionState, SsmState

_LIMIT = re.compile(r"^([1-9][0-9]*|[0-9])(%?)$")
ERROR_DETAILS = {"Failed", "Execution Timed Out"}


def parse_limit(value: str, target_count: int, name: str, concurrency: bool) -> int:
    """'10' or '10%' -> an absolute number for this command's target count."""
    match = _LIMIT.match(value)
    if not match:
        raise AwsError("ValidationException", f"{name} must be a number or a percentage")
    number = int(match.group(1))
    if match.group(2):
        if number > 100:
            raise AwsError("ValidationException", f"{name} percentage must be at most 100%")
        absolute = number * target_count / 100
        return max(1, math.ceil(absolute)) if concurrency else math.floor(absolute)
    if concurrency and number < 1:
        raise AwsError("ValidationException", "MaxConcurrency must be at least 1")
    return number


def finish(invocation: Invocation, status: str, details: str, now: datetime) -> None:
    invocation.status, invocation.details, invocation.finished = status, details, now


class CommandEngine:
    """Dispatches, times out and summarises commands of one (account, region).

    Only the engine posts and drops messages, so it also keeps each region's inbox per destination
    (message ids; found once per region by one scan): GetMessages reads one instance's messages,
    never the region's (a window over 10,000 instances leaves 10,000 of them)."""

    def __init__(self, state: SsmState) -> None:
        self.state = state
        self._inboxes: dict[int, tuple[RegionState, dict[str, dict[str, None]]]] = {}  # id(region) -> ...

    def _inbox(self, region: RegionState) -> dict[str, dict[str, None]]:
        entry = self._inboxes.get(id(region))
        if entry is None or entry[0] is not region:
            boxes: dict[str, dict[str, None]] = {}
            for message in region.messages.values():
                boxes.setdefault(message.destination, {})[message.message_id] = None
            entry = self._inboxes[id(region)] = (region, boxes)
        return entry[1]

    def post(self, region: RegionState, message: Message) -> None:
        region.messages[message.message_id] = message
        self._inbox(region).setdefault(message.destination, {})[message.message_id] = None

    def messages_for(self, region: RegionState, destination: str) -> list[Message]:
        """The messages (of any state) addressed to one instance, oldest first."""
        box = self._inbox(region).get(destination, {})
        return [region.messages[i] for i in box if i in region.messages]

    def advance(self, region: RegionState, now: datetime) -> None:
        for command in region.commands.values():
            if command.status not in ("Pending", "InProgress", "Cancelling"):
                continue
            for invocation in command.invocations.values():
                if not invocation.terminal:
                    self._time_out(region, command, invocation, now)
            if self.error_count(command) > command.error_limit:
                for invocation in command.invocations.values():
                    if not invocation.dispatched and not invocation.terminal:
                        finish(invocation, "Cancelled", "Terminated", now)
            elif not command.cancelled:
                self._dispatch(region, command, now)
            self._summarise(command)

    def _time_out(
        self, region: RegionState, command: Command, invocation: Invocation, now: datetime
    ) -> None:
        instance = region.instances.get(invocation.instance_id)
        if invocation.started is None:
            if instance is None or instance.deregistered:
                finish(invocation, "Failed", "Undeliverable", now)
                self._drop_messages(region, invocation)
            elif now >= command.requested + command.timeout:
                finish(invocation, "TimedOut", "Delivery Timed Out", now)
                self._drop_messages(region, invocation)
            elif invocation.dispatched and not invocation.cancel_requested:
                lost = self.state.ping_status(instance, now) == "ConnectionLost"
                invocation.status = invocation.details = "Delayed" if lost else "Pending"
        elif now >= invocation.started + command.execution_timeout:
            finish(invocation, "TimedOut", "Execution Timed Out", now)

    def _dispatch(self, region: RegionState, command: Command, now: datetime) -> None:
        active = sum(1 for i in command.invocations.values() if i.dispatched and not i.terminal)
        for invocation in command.invocations.values():
            if active >= command.concurrency_limit:
                break
            if invocation.dispatched or invocation.terminal:
                continue
            invocation.dispatched = True
            active += 1
            payload = {
                "Parameters": command.parameters,
                "DocumentContent": command.document_content,
                "CommandId": command.command_id,
                "DocumentName": command.document_name,
                "OutputS3KeyPrefix": command.output_prefix or "",
                "OutputS3BucketName": command.output_bucket or "",
                "CloudWatchLogGroupName": "",
                "CloudWatchOutputEnabled": "false",
            }
            self.post(region, Message(
                message_id=invocation.message_id,
                destination=invocation.instance_id,
                topic=f"aws.ssm.sendCommand.{region.region}.1",
                payload=json.dumps(payload),
                created=now,
                visible_after=now,
                command_id=command.command_id,
            ))

    def _drop_messages(self, region: RegionState, invocation: Invocation) -> None:
        region.messages.pop(invocation.message_id, None)
        self._inbox(region).get(invocation.instance_id, {}).pop(invocation.message_id, None)

    @staticmethod
    def error_count(command: Command) -> int:
        return sum(1 for i in command.invocations.values() if i.details in ERROR_DETAILS)

    def _summarise(self, command: Command) -> None:
        invocations = list(command.invocations.values())
        if any(not i.terminal for i in invocations):
            if command.cancelled:
                command.status = command.details = "Cancelling"
            elif any(i.dispatched for i in invocations):
                command.status, command.details = "InProgress", "In Progress"
            return
        counted = [i for i in invocations if i.details != "Undeliverable"]
        errors = self.error_count(command)
        if command.cancelled:
            command.status = command.details = "Cancelled"
        elif all(i.status == "Success" for i in counted):
            command.status = command.details = "Success"
        elif errors > command.error_limit:
            timed_out = all(i.details == "Execution Timed Out" for i in counted
                            if i.details in ERROR_DETAILS)
            command.status = "TimedOut" if timed_out else "Failed"
            command.details = "Execution Timed Out" if timed_out else "Failed"
        elif sum(1 for i in counted if i.details == "Delivery Timed Out") > command.error_limit:
            command.status, command.details = "TimedOut", "Delivery Timed Out"
        else:
            command.status, command.details = "Failed", "Incomplete"

    def cancel(self, region: RegionState, command: Command, instance_ids: list[str],
               now: datetime) -> None:
        """Not-started invocations end at once; started ones get a cancel message."""
        chosen = [command.invocations[i] for i in instance_ids] if instance_ids else list(
            command.invocations.values())
        if not instance_ids:
            command.cancelled = True
        for invocation in chosen:
            if invocation.terminal or invocation.cancel_requested:
                continue
            invocation.cancel_requested = True
            if invocation.started is None:
                finish(invocation, "Cancelled", "Cancelled", now)
                self._drop_messages(region, invocation)
                continue
            invocation.status = invocation.details = "Cancelling"
            message_id = f"aws.ssm.{uuid.uuid4()}.{invocation.instance_id}"
            self.post(region, Message(
                message_id=message_id,
                destination=invocation.instance_id,
                topic=f"aws.ssm.cancelCommand.{region.region}.1",
                payload=json.dumps({"CancelMessageId": invocation.message_id}),
                created=now,
                visible_after=now,
            ))
        self._summarise(command)

    @staticmethod
    def message_view(message: Message) -> dict[str, str]:
        import hashlib

        return {
            "CreatedDate": iso8601(message.created),
            "Destination": message.destination,
            "MessageId": message.message_id,
            "Payload": message.payload,
            "PayloadDigest": hashlib.sha256(message.payload.encode()).hexdigest(),
            "Topic": message.topic,
        }

"""ec2messages (Message Delivery Service), the agent's command channel.

GetMessages hands out pending messages for one managed instance (each one again only after its
visibility timeout); AcknowledgeMessage marks a sendCommand invocation started (InProgress);
SendReply carries the agent's document status and plugin results - a terminal documentStatus
completes the invocation; FailMessage fails it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from localclouds.aws.context import RequestContext
from localclouds.aws.protocol import AwsError, parse_time, require
from localclouds.aws.ssm_engine import CommandEngine, finish
from localclouds.aws.ssm_hybrid import HybridService
from localclouds.aws.ssm_state import Invocation, Message, RegionState, SsmState

DEFAULT_VISIBILITY = 30
TERMINAL_REPLY = {
    "Success": ("Success", "Success"),
    "Failed": ("Failed", "Failed"),
    "TimedOut": ("TimedOut", "Execution Timed Out"),
    "Cancelled": ("Cancelled", "Cancelled"),
}
MAX_PAYLOAD = 256 * 1024


class MessageService:
    def __init__(self, state: SsmState, engine: CommandEngine, hybrid: HybridService) -> None:
        self.state = state
        self.engine = engine
        self.hybrid = hybrid

    def handlers(self) -> dict[str, Any]:
        return {
            "GetMessages": self.get_messages,
            "AcknowledgeMessage": self.acknowledge_message,
            "SendReply": self.send_reply,
            "FailMessage": self.fail_message,
            "DeleteMessage": self.delete_message,
            "GetEndpoint": self.get_endpoint,
        }

    def _destination(self, ctx: RequestContext, instance_id: str) -> RegionState:
        try:
            self.hybrid.instance_for_agent(ctx, instance_id)
        except AwsError as error:
            if error.code == "InvalidInstanceId":
                raise AwsError("InvalidDestinationException",
                               f"Destination {instance_id} is not valid.") from None
            raise AwsError("AuthorizationFailureException", error.message) from None
        return self.state.region(ctx.account_id, ctx.region)

    def _message(self, ctx: RequestContext, message_id: Any) -> tuple[RegionState, Message]:
        if not isinstance(message_id, str) or len(message_id) < 16:
            raise AwsError("InvalidMessageIdException", "The message ID isn't valid.")
        region = self.state.region(ctx.account_id, ctx.region)
        message = region.messages.get(message_id)
        if message is None:
            raise AwsError("InvalidMessageIdException", f"Message {message_id} does not exist.")
        self._destination(ctx, message.destination)
        return region, message

    def _invocation(self, region: RegionState, message: Message) -> Invocation | None:
        if message.command_id is None:
            return None
        command = region.commands.get(message.command_id)
        return command.invocations.get(message.destination) if command else None

    def get_messages(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        destination = require(params, "Destination")
        request_id = require(params, "MessagesRequestId")
        visibility = params.get("VisibilityTimeoutInSeconds", DEFAULT_VISIBILITY)
        if not isinstance(visibility, int) or isinstance(visibility, bool) or visibility < 0:
            raise AwsError("ValidationException", "VisibilityTimeoutInSeconds must be >= 0")
        region = self._destination(ctx, destination)
        ready = [m for m in self.engine.messages_for(region, destination)
                 if not m.acknowledged and m.visible_after <= ctx.now]
        ready.sort(key=lambda m: m.created)
        for message in ready:
            message.visible_after = ctx.now + timedelta(seconds=visibility)
            invocation = self._invocation(region, message)
            if invocation is not None:
                invocation.delivered_at = ctx.now
        return {
            "Destination": destination,
            "MessagesRequestId": request_id,
            "Messages": [self.engine.message_view(m) for m in ready],
        }

    def acknowledge_message(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region, message = self._message(ctx, params.get("MessageId"))
        message.acknowledged = True
        invocation = self._invocation(region, message)
        if invocation is not None and not invocation.terminal and invocation.started is None:
            invocation.started = ctx.now
            if not invocation.cancel_requested:
                invocation.status, invocation.details = "InProgress", "In Progress"
        self.engine.advance(region, ctx.now)
        return {}

    def send_reply(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region, message = self._message(ctx, params.get("MessageId"))
        reply_id = require(params, "ReplyId")
        raw = require(params, "Payload")
        if len(raw) > MAX_PAYLOAD:
            raise AwsError("ValidationException", "Payload is too large")
        try:
            payload = json.loads(raw)
            if not isinstance(payload, dict):
                raise ValueError
        except ValueError:
            raise AwsError("ValidationException", "Payload must be a JSON object") from None
        invocation = self._invocation(region, message)
        status = "NoActionTaken"
        if invocation is not None and not invocation.terminal:
            self._apply_reply(invocation, payload, ctx.now)
            self.engine.advance(region, ctx.now)
            status = "Acknowledged"
        return {"MessageId": message.message_id, "ReplyId": reply_id, "ReplyStatus": status}

    @staticmethod
    def _apply_reply(invocation: Invocation, payload: dict[str, Any], now: datetime) -> None:
        if invocation.started is None:
            invocation.started = now
        plugins = []
        runtime = payload.get("runtimeStatus")
        for name, result in (runtime.items() if isinstance(runtime, dict) else []):
            if not isinstance(result, dict):
                continue
            plugin_status = str(result.get("status", "InProgress"))
            code = result.get("code", 0)
            plugins.append({
                "Name": str(result.get("name") or name),
                "Status": TERMINAL_REPLY.get(plugin_status, ("InProgress", ""))[0],
                "StatusDetails": TERMINAL_REPLY.get(plugin_status, ("", "In Progress"))[1],
                "ResponseCode": code if isinstance(code, int) else -1,
                "ResponseStartDateTime": parse_time(result.get("startDateTime")) or now,
                "ResponseFinishDateTime": parse_time(result.get("endDateTime")) or now,
                "Output": str(result.get("output") or result.get("standardOutput") or ""),
                "_stderr": str(result.get("standardError") or ""),
            })
        if plugins:
            invocation.stdout = "\n".join(p["Output"] for p in plugins if p["Output"])
            invocation.stderr = "\n".join(p.pop("_stderr") for p in plugins if p.get("_stderr"))
            for plugin in plugins:
                plugin.pop("_stderr", None)
            invocation.plugins = plugins
            invocation.response_code = max(p["ResponseCode"] for p in plugins)
        document_status = payload.get("documentStatus")
        if document_status in TERMINAL_REPLY:
            status, details = TERMINAL_REPLY[document_status]
            if invocation.response_code < 0:
                invocation.response_code = 0 if status == "Success" else 1
            finish(invocation, status, details, now)
        elif not invocation.cancel_requested:
            invocation.status, invocation.details = "InProgress", "In Progress"

    def fail_message(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region, message = self._message(ctx, params.get("MessageId"))
        if params.get("FailureType") not in ("NoHandlerExists", "InternalHandlerException"):
            raise AwsError("ValidationException", "FailureType is not valid")
        message.acknowledged = True
        invocation = self._invocation(region, message)
        if invocation is not None and not invocation.terminal:
            finish(invocation, "Failed", "Failed", ctx.now)
            self.engine.advance(region, ctx.now)
        return {}

    def delete_message(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region, message = self._message(ctx, params.get("MessageId"))
        message.acknowledged = True
        return {}

    def get_endpoint(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._destination(ctx, require(params, "Destination"))
        return {"Endpoint": ctx.base_url}

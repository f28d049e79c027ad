"""Run Command, control side: SendCommand, ListCommands, ListCommandInvocations,
GetCommandInvocation, CancelCommand. One implementation replaces moto's (which has no agents).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from localclouds.aws.context import RequestContext
from localclouds.aws.protocol import (
    AwsError,
    paginate,
    parse_time,
    require,
    string_list,
    validation,
)
from localclouds.aws.ssm_documents import execution_timeout, resolve_document, resolve_parameters
from localclouds.aws.ssm_engine import CommandEngine, parse_limit
from localclouds.aws.ssm_instances import targets_instance
from localclouds.aws.ssm_state import Command, Invocation, RegionState, SsmState

MAX_INSTANCE_IDS = 50
DEFAULT_TIMEOUT = 3600
OUTPUT_LIMIT_GET = 24000
OUTPUT_LIMIT_LIST = 2500


class CommandService:
    def __init__(self, state: SsmState, engine: CommandEngine) -> None:
        self.state = state
        self.engine = engine

    def handlers(self) -> dict[str, Any]:
        return {
            "SendCommand": self.send_command,
            "ListCommands": self.list_commands,
            "ListCommandInvocations": self.list_command_invocations,
            "GetCommandInvocation": self.get_command_invocation,
            "CancelCommand": self.cancel_command,
        }

    def send_command(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.state.region(ctx.account_id, ctx.region)
        document = resolve_document(require(params, "DocumentName"), ctx.account_id, ctx.region)
        parameters = resolve_parameters(document, params.get("Parameters"))
        instance_ids = string_list(params.get("InstanceIds"), "InstanceIds")
        targets = params.get("Targets") or []
        if bool(instance_ids) == bool(targets):
            raise validation("Exactly one of InstanceIds or Targets must be specified.")
        if len(instance_ids) > MAX_INSTANCE_IDS:
            raise validation(
                "1 validation error detected: Value at 'instanceIds' failed to satisfy "
                "constraint: Member must have length less than or equal to 50"
            )
        if len(set(instance_ids)) != len(instance_ids):
            raise AwsError("DuplicateInstanceId", "Instance IDs must be unique.")
        chosen = self._targets(region, instance_ids, targets)
        timeout = params.get("TimeoutSeconds", DEFAULT_TIMEOUT)
        if not isinstance(timeout, int) or isinstance(timeout, bool) or not (
            30 <= timeout <= 2592000
        ):
            raise validation("TimeoutSeconds must be between 30 and 2592000")
        max_concurrency = str(params.get("MaxConcurrency", "50"))
        max_errors = str(params.get("MaxErrors", "0"))
        command = Command(
            command_id=str(uuid.uuid4()),
            document_name=document.name,
            document_content=document.content,
            parameters=parameters,
            requested=ctx.now,
            timeout=timedelta(seconds=timeout),
            execution_timeout=timedelta(seconds=execution_timeout(document, parameters)),
            max_concurrency=max_concurrency,
            max_errors=max_errors,
            concurrency_limit=parse_limit(max_concurrency, len(chosen), "MaxConcurrency", True),
            error_limit=parse_limit(max_errors, len(chosen), "MaxErrors", False),
            instance_ids=instance_ids,
            targets=targets,
            comment=params.get("Comment") or "",
            output_bucket=params.get("OutputS3BucketName"),
            output_prefix=params.get("OutputS3KeyPrefix"),
            service_role=params.get("ServiceRoleArn"),
        )
        for instance in chosen:
            command.invocations[instance.instance_id] = Invocation(
                command.command_id, instance.instance_id, instance.name or ""
            )
        if not chosen:
            command.status = command.details = "Success"
        region.commands[command.command_id] = command
        self.engine.advance(region, ctx.now)
        return {"Command": self._command_view(command)}

    @staticmethod
    def _targets(region: RegionState, instance_ids: list[str], targets: Any) -> list[Any]:
        if instance_ids:
            chosen = []
            for instance_id in instance_ids:
                instance = region.instances.get(instance_id)
                if instance is None or instance.deregistered:
                    raise AwsError("InvalidInstanceId",
                                   f"Instances [{instance_id}] not in a valid state.")
                chosen.append(instance)
            return chosen
        if not isinstance(targets, list) or len(targets) > 5 or not all(
            isinstance(t, dict) and isinstance(t.get("Key"), str) for t in targets
        ):
            raise validation("Targets must be a list of at most 5 {Key, Values} entries")
        for target in targets:
            key = target["Key"]
            if not (key == "InstanceIds" or key.startswith("tag:") or key == "tag-key"):
                raise validation(f"Target key {key} is not supported")
        return [i for i in region.instances.values()
                if not i.deregistered and targets_instance(targets, i)]

    def _command_view(self, command: Command) -> dict[str, Any]:
        invocations = list(command.invocations.values())
        view: dict[str, Any] = {
            "CommandId": command.command_id,
            "DocumentName": command.document_name,
            "DocumentVersion": "$DEFAULT",
            "Comment": command.comment,
            "ExpiresAfter": command.requested + command.timeout + command.execution_timeout,
            "Parameters": command.parameters,
            "InstanceIds": command.instance_ids,
            "Targets": command.targets,
            "RequestedDateTime": command.requested,
            "Status": command.status,
            "StatusDetails": command.details,
            "MaxConcurrency": command.max_concurrency,
            "MaxErrors": command.max_errors,
            "TargetCount": len(invocations),
            "CompletedCount": sum(1 for i in invocations if i.terminal),
            "ErrorCount": self.engine.error_count(command),
            "DeliveryTimedOutCount": sum(
                1 for i in invocations if i.details == "Delivery Timed Out"),
            "TimeoutSeconds": int(command.timeout.total_seconds()),
        }
        if command.output_bucket:
            view["OutputS3BucketName"] = command.output_bucket
            view["OutputS3KeyPrefix"] = command.output_prefix or ""
            view["OutputS3Region"] = "us-east-1"
        if command.service_role:
            view["ServiceRole"] = command.service_role
        return view

    def _command(self, region: RegionState, command_id: Any) -> Command:
        command = region.commands.get(command_id) if isinstance(command_id, str) else None
        if command is None:
            raise AwsError("InvalidCommandId", "The specified command ID isn't valid.")
        return command

    def list_commands(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.state.region(ctx.account_id, ctx.region)
        commands = list(region.commands.values())
        if params.get("CommandId"):
            commands = [self._command(region, params["CommandId"])]
        if params.get("InstanceId"):
            commands = [c for c in commands if params["InstanceId"] in c.invocations]
        for flt in params.get("Filters") or []:
            commands = [c for c in commands if _command_matches(c, flt)]
        commands.sort(key=lambda c: c.requested, reverse=True)
        page, token = paginate(commands, params, default=50, maximum=50)
        result: dict[str, Any] = {"Commands": [self._command_view(c) for c in page]}
        if token:
            result["NextToken"] = token
        return result

    def list_command_invocations(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        region = self.state.region(ctx.account_id, ctx.region)
        commands = ([self._command(region, params["CommandId"])] if params.get("CommandId")
                    else sorted(region.commands.values(), key=lambda c: c.requested, reverse=True))
        rows = [(c, i) for c in commands for i in c.invocations.values()]
        if params.get("InstanceId"):
            rows = [(c, i) for c, i in rows if i.instance_id == params["InstanceId"]]
        for flt in params.get("Filters") or []:
            rows = [(c, i) for c, i in rows if _command_matches(c, flt, i)]
        page, token = paginate(rows, params, default=50, maximum=50)
        details = bool(params.get("Details"))
        result: dict[str, Any] = {
            "CommandInvocations": [self._invocation_view(c, i, details) for c, i in page]}
        if token:
            result["NextToken"] = token
        return result

    @staticmethod
    def _invocation_view(command: Command, inv: Invocation, details: bool) -> dict[str, Any]:
        view: dict[str, Any] = {
            "CommandId": command.command_id,
            "InstanceId": inv.instance_id,
            "InstanceName": inv.instance_name,
            "Comment": command.comment,
            "DocumentName": command.document_name,
            "DocumentVersion": "$DEFAULT",
            "RequestedDateTime": command.requested,
            "Status": inv.status,
            "StatusDetails": inv.details,
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "CommandPlugins": [],
        }
        if details:
            view["CommandPlugins"] = [
                {**plugin, "Output": plugin.get("Output", "")[:OUTPUT_LIMIT_LIST]}
                for plugin in inv.plugins
            ]
        return view

    def get_command_invocation(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        region = self.state.region(ctx.account_id, ctx.region)
        command_id = require(params, "CommandId")
        instance_id = require(params, "InstanceId")
        command = region.commands.get(command_id)
        invocation = command.invocations.get(instance_id) if command else None
        if command is None or invocation is None:
            raise AwsError("InvocationDoesNotExist", "The command ID and managed node ID you "
                           "specified didn't match any invocations.")
        plugin_name = params.get("PluginName")
        plugins = invocation.plugins
        if plugin_name:
            plugins = [p for p in plugins if p.get("Name") == plugin_name]
            if not plugins and invocation.plugins:
                raise AwsError("InvalidPluginName", "The plugin name isn't valid.")
        stdout = "\n".join(p.get("Output", "") for p in plugins) if plugin_name else (
            invocation.stdout)
        result: dict[str, Any] = {
            "CommandId": command_id,
            "InstanceId": instance_id,
            "Comment": command.comment,
            "DocumentName": command.document_name,
            "DocumentVersion": "$DEFAULT",
            "ResponseCode": invocation.response_code,
            "Status": invocation.status,
            "StatusDetails": invocation.details,
            "StandardOutputContent": stdout[:OUTPUT_LIMIT_GET],
            "StandardOutputUrl": "",
            "StandardErrorContent": invocation.stderr[:OUTPUT_LIMIT_GET],
            "StandardErrorUrl": "",
            "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "",
                                       "CloudWatchOutputEnabled": False},
        }
        if plugin_name:
            result["PluginName"] = plugin_name
        if invocation.started:
            result["ExecutionStartDateTime"] = invocation.started.isoformat()
        if invocation.finished and invocation.started:
            result["ExecutionEndDateTime"] = invocation.finished.isoformat()
            elapsed = invocation.finished - invocation.started
            result["ExecutionElapsedTime"] = f"PT{elapsed.total_seconds():.3f}S"
        return result

    def cancel_command(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.state.region(ctx.account_id, ctx.region)
        command = self._command(region, require(params, "CommandId"))
        instance_ids = string_list(params.get("InstanceIds"), "InstanceIds")
        for instance_id in instance_ids:
            if instance_id not in command.invocations:
                raise AwsError("InvalidInstanceId", f"Instance {instance_id} is not a target.")
        self.engine.cancel(region, command, instance_ids, ctx.now)
        return {}


def _command_matches(command: Command, flt: Any, invocation: Invocation | None = None) -> bool:
    """ListCommands / ListCommandInvocations filters (key + single value)."""
    if not isinstance(flt, dict):
        raise AwsError("InvalidFilterKey", "The specified key isn't valid.")
    key, value = flt.get("key"), flt.get("value")
    if key == "InvokedAfter":
        when = parse_time(value)
        return when is not None and command.requested >= when
    if key == "InvokedBefore":
        when = parse_time(value)
        return when is not None and command.requested <= when
    if key == "Status":
        status = invocation.status if invocation else command.status
        return status == value
    if key == "DocumentName":
        return command.document_name == value
    if key == "ExecutionStage":
        terminal = invocation.terminal if invocation else command.status not in (
            "Pending", "InProgress", "Cancelling")
        return (value == "Complete") == terminal
    raise AwsError("InvalidFilterKey", "The specified key isn't valid.")

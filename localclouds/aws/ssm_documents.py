"""The AWS-owned Command documents the emulator knows, with their parameters and content.

moto ships no AWS-* documents, so the ones fleetpatch sends are described here (parameter names,
allowed values, defaults) and the content mirrors the real documents' step names so a simulated
agent reports plugin results under the names the real agent would use. Account-owned Command
documents created through moto's CreateDocument are accepted as well.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from localclouds.aws.protocol import AwsError


@dataclass(frozen=True)
class ParameterSpec:
    default: list[str] | None = None
    allowed: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class CommandDocument:
    name: str
    content: dict[str, Any]
    parameters: dict[str, ParameterSpec] = field(default_factory=dict)
    default_execution_timeout: int = 3600


def _patch_content(description: str, with_hooks: bool) -> dict[str, Any]:
    params = ["Operation", "SnapshotId", "InstallOverrideList", "RebootOption", "BaselineOverride"]
    if with_hooks:
        params = ["Operation", "SnapshotId", "RebootOption", "PreInstallHookDocName",
                  "PostInstallHookDocName", "OnExitHookDocName"]
    return {
        "schemaVersion": "2.2",
        "description": description,
        "parameters": {name: {"type": "String"} for name in params},
        "mainSteps": [
            {"precondition": {"StringEquals": ["platformType", "Windows"]},
             "action": "aws:runPowerShellScript", "name": "PatchWindows",
             "inputs": {"timeoutSeconds": 7200, "runCommand": ["# patch baseline operation"]}},
            {"precondition": {"StringEquals": ["platformType", "Linux"]},
             "action": "aws:runShellScript", "name": "PatchLinux",
             "inputs": {"timeoutSeconds": 7200, "runCommand": ["# patch baseline operation"]}},
        ],
    }


_PATCH_PARAMS = {
    "Operation": ParameterSpec(["Scan"], ("Scan", "Install")),
    "SnapshotId": ParameterSpec([""]),
    "InstallOverrideList": ParameterSpec([""]),
    "BaselineOverride": ParameterSpec([""]),
    "RebootOption": ParameterSpec(["RebootIfNeeded"], ("RebootIfNeeded", "NoReboot")),
}

AWS_DOCUMENTS: dict[str, CommandDocument] = {
    "AWS-RunPatchBaseline": CommandDocument(
        "AWS-RunPatchBaseline",
        _patch_content("Scans for or installs patches from a patch baseline.", False),
        _PATCH_PARAMS,
        7200,
    ),
    "AWS-RunPatchBaselineWithHooks": CommandDocument(
        "AWS-RunPatchBaselineWithHooks",
        _patch_content("Patch baseline operation with lifecycle hooks.", True),
        {
            "Operation": _PATCH_PARAMS["Operation"],
            "SnapshotId": _PATCH_PARAMS["SnapshotId"],
            "RebootOption": _PATCH_PARAMS["RebootOption"],
            "PreInstallHookDocName": ParameterSpec(["AWS-Noop"]),
            "PostInstallHookDocName": ParameterSpec(["AWS-Noop"]),
            "OnExitHookDocName": ParameterSpec(["AWS-Noop"]),
        },
        7200,
    ),
    "AWS-RunShellScript": CommandDocument(
        "AWS-RunShellScript",
        {
            "schemaVersion": "1.2",
            "description": "Run a shell script or specify the commands to run.",
            "parameters": {"commands": {"type": "StringList"},
                           "workingDirectory": {"type": "String"},
                           "executionTimeout": {"type": "String", "default": "3600"}},
            "runtimeConfig": {"aws:runShellScript": {"properties": [
                {"id": "0.aws:runShellScript", "runCommand": "{{ commands }}",
                 "workingDirectory": "{{ workingDirectory }}",
                 "timeoutSeconds": "{{ executionTimeout }}"}]}},
        },
        {"commands": ParameterSpec(required=True), "workingDirectory": ParameterSpec([""]),
         "executionTimeout": ParameterSpec(["3600"])},
    ),
    "AWS-RunPowerShellScript": CommandDocument(
        "AWS-RunPowerShellScript",
        {
            "schemaVersion": "1.2",
            "description": "Run a PowerShell script or specify the paths to scripts to run.",
            "parameters": {"commands": {"type": "StringList"},
                           "workingDirectory": {"type": "String"},
                           "executionTimeout": {"type": "String", "default": "3600"}},
            "runtimeConfig": {"aws:runPowerShellScript": {"properties": [
                {"id": "0.aws:runPowerShellScript", "runCommand": "{{ commands }}",
                 "workingDirectory": "{{ workingDirectory }}",
                 "timeoutSeconds": "{{ executionTimeout }}"}]}},
        },
        {"commands": ParameterSpec(required=True), "workingDirectory": ParameterSpec([""]),
         "executionTimeout": ParameterSpec(["3600"])},
    ),
}


def resolve_document(name: str, account_id: str, region: str) -> CommandDocument:
    """An AWS-owned document, or an account-owned Command document kept by moto."""
    if name in AWS_DOCUMENTS:
        return AWS_DOCUMENTS[name]
    if not name.startswith("AWS-"):
        from moto.ssm.models import ssm_backends

        backend = ssm_backends[account_id][region]
        documents = backend._documents.get(name)  # moto keeps no public lookup without raising
        if documents is not None:
            document = documents.get_default_version()
            if document.document_type == "Command":
                content = document.content_json
                specs = {key: ParameterSpec([str(value.get("default"))] if "default" in value
                                            else None, required="default" not in value)
                         for key, value in (content.get("parameters") or {}).items()}
                return CommandDocument(name, content, specs)
    raise AwsError("InvalidDocument", f"Document with name {name} does not exist.")


def resolve_parameters(document: CommandDocument, given: Any) -> dict[str, list[str]]:
    """Validate the SendCommand Parameters against the document and fill in defaults."""
    if given is None:
        given = {}
    if not isinstance(given, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in given.values()
    ):
        raise AwsError("InvalidParameters", "Parameters must map names to lists of strings.")
    unknown = sorted(set(given) - set(document.parameters))
    if unknown:
        raise AwsError("InvalidParameters",
                       f"document {document.name} does not support parameters {unknown}")
    resolved: dict[str, list[str]] = {}
    for name, spec in document.parameters.items():
        if name in given:
            values = given[name]
            if spec.allowed and not set(values) <= set(spec.allowed):
                raise AwsError("InvalidParameters",
                               f"Parameter {name} must be one of {list(spec.allowed)}")
            resolved[name] = values
        elif spec.required:
            raise AwsError("InvalidParameters", f"Missing required parameter {name}")
        elif spec.default is not None:
            resolved[name] = spec.default
    return resolved


def execution_timeout(document: CommandDocument, parameters: dict[str, list[str]]) -> int:
    raw = (parameters.get("executionTimeout") or [""])[0]
    try:
        value = int(raw)
    except ValueError:
        return document.default_execution_timeout
    if not 1 <= value <= 172800:
        raise AwsError("InvalidParameters", "executionTimeout must be between 1 and 172800")
    return value


def content_json(document: CommandDocument) -> str:
    return json.dumps(document.content)

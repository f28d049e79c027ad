"""`fleetpatch session start` against the local AWS: runs `aws ssm start-session` with the
credentials in its environment when the plugin is installed, else prints exactly that."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from clients.cli.main import app
from clouds.aws.patch_train import PatchTrainStore
from clouds.aws.remote_access import RemoteAccess
from clouds.aws.sessions import AwsSessions
from contracts.enrollment import AccountRef
from tests.support.local_aws import LocalAws

runner = CliRunner()


@pytest.fixture
def node(local_aws: LocalAws, sessions: AwsSessions, systems_account: AccountRef,
         monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FLEETPATCH_AWS__ENDPOINT_URL", local_aws.endpoint)
    RemoteAccess(sessions, PatchTrainStore(sessions, "fleetpatch-patching-{account_id}-{region}")).enable(systems_account)
    return local_aws.agent(local_aws.client("ssm", local_aws.assume(systems_account.account_id))).instance_id


def _fake_tools(bin_dir: Path, record: Path) -> None:
    """`aws` that records its argv and AWS_* environment; a `session-manager-plugin` beside it."""
    bin_dir.mkdir()
    aws = bin_dir / "aws"
    aws.write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'env': {{k: v for k, v in os.environ.items() if k.startswith('AWS_')}}}}, open({str(record)!r}, 'w'))\n"
        "sys.exit(3)\n"
    )
    plugin = bin_dir / "session-manager-plugin"
    plugin.write_text("#!/bin/sh\nexit 0\n")
    for tool in (aws, plugin):
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)


def test_runs_the_aws_cli_with_credentials_only_in_its_environment(
    node: str, systems_account: AccountRef, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "aws-call.json"
    _fake_tools(tmp_path / "bin", record)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    result = runner.invoke(app, ["session", "start", node, "--account", systems_account.account_id])
    assert result.exit_code == 3, result.output  # the AWS CLI's own exit code
    called: dict[str, Any] = json.loads(record.read_text())
    assert called["argv"] == ["ssm", "start-session", "--target", node, "--region", "us-east-1"]
    env = called["env"]
    assert env["AWS_ACCESS_KEY_ID"] != os.environ["AWS_ACCESS_KEY_ID"]  # the operator role's, not the caller's
    assert env["AWS_SESSION_TOKEN"] and env["AWS_SECRET_ACCESS_KEY"]
    assert not any(env["AWS_SECRET_ACCESS_KEY"] in arg for arg in called["argv"])


def test_prints_the_command_when_the_plugin_is_missing(
    node: str, systems_account: AccountRef, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither aws nor the plugin
    result = runner.invoke(app, ["session", "start", node, "--account", systems_account.account_id])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"aws ssm start-session --target {node} --region us-east-1"
    exported = dict(line.removeprefix("export ").split("=", 1) for line in lines[:-1])
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"} <= set(exported)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    for args in (["not-an-instance"], ["mi-0123456789abcdef0", "--account", "12"]):
        result = runner.invoke(app, ["session", "start", *args])
        assert result.exit_code == 2, result.output

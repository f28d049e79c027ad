"""``fleetpatch reset`` and the check ``fleetpatch up`` makes before it starts: Temporal's history
and the local clouds' state are kept together or erased together."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from clients.cli.main import app
from clients.local.state import restore_problems
from config.settings import Settings
from localclouds.aws.persistence import FORMAT, moto_version


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / ".fleetpatch"
    (state / "secrets").mkdir(parents=True)
    (state / "secrets" / "admin-token").write_text("kept")
    (state / "gcp").mkdir()
    (state / "gcp" / "vms.json").write_text("[]")
    monkeypatch.setenv("FLEETPATCH_STATE_DIR", str(state))
    return state


def _aws_state(state: Path, moto: str | None = None) -> None:
    (state / "aws").mkdir(exist_ok=True)
    header = f'{{"format": {FORMAT}, "moto": "{moto or moto_version()}"}}\n'
    (state / "aws" / "state.bin").write_bytes(header.encode() + b"pickle")


def test_reset_erases_both_sides_and_keeps_secrets(state: Path) -> None:
    (state / "temporal.db").write_text("db")
    (state / "temporal.db-wal").write_text("wal")
    _aws_state(state)
    result = CliRunner().invoke(app, ["reset", "--yes"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in state.iterdir()) == ["secrets", "up.lock"]
    assert (state / "secrets" / "admin-token").read_text() == "kept"
    assert restore_problems(Settings()) == []


def test_reset_asks_first(state: Path) -> None:
    (state / "temporal.db").write_text("db")
    result = CliRunner().invoke(app, ["reset"], input="n\n")
    assert result.exit_code == 1
    assert (state / "temporal.db").exists() and (state / "gcp").exists()
    result = CliRunner().invoke(app, ["reset"], input="y\n")
    assert result.exit_code == 0
    assert not (state / "temporal.db").exists() and not (state / "gcp").exists()


def test_temporal_history_without_aws_state_is_a_problem(state: Path) -> None:
    assert restore_problems(Settings()) == []  # a first run
    (state / "temporal.db").write_text("db")
    [problem] = restore_problems(Settings())
    assert "temporal.db" in problem and "local AWS has no saved state" in problem
    _aws_state(state)
    assert restore_problems(Settings()) == []
    _aws_state(state, moto="0.0.1")
    [problem] = restore_problems(Settings())
    assert "moto 0.0.1" in problem


def test_up_refuses_to_start_on_half_a_world(state: Path) -> None:
    (state / "temporal.db").write_text("db")
    result = CliRunner().invoke(app, ["up"])
    assert result.exit_code == 1
    assert "fleetpatch reset" in result.output and "temporal.db" in result.output
    assert not (state / "logs").exists()  # nothing was started

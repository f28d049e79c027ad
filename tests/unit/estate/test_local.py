"""The local default: ``fleetpatch db upgrade``, and ``fleetpatch up`` migrating and publishing the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from clients.cli.main import app
from clients.local import services
from clients.local.supervisor import Supervisor
from config.settings import Settings
from estate import db

#: The migrations' one head (several heads would raise here: the revisions must form a chain).
HEAD = ScriptDirectory.from_config(db.alembic_config("sqlite://")).get_current_head()


def test_default_url_is_sqlite_in_the_state_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("FLEETPATCH_DATABASE__URL", raising=False)
    settings = Settings(state_dir=tmp_path / ".fleetpatch")
    assert settings.database_url == f"sqlite:///{tmp_path / '.fleetpatch' / 'estate.db'}"
    monkeypatch.setenv("FLEETPATCH_DATABASE__URL", "postgresql://fp:s3cret@db:5432/fleetpatch")
    configured = Settings()
    assert db.database_url(configured) == "postgresql+psycopg://fp:s3cret@db:5432/fleetpatch"
    assert "s3cret" not in db.display_url(configured.database_url)


def test_db_upgrade_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FLEETPATCH_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("FLEETPATCH_DATABASE__URL", raising=False)
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"revision {HEAD}" in result.output
    assert db.current_revision(f"sqlite:///{tmp_path / 'estate.db'}") == HEAD


def test_db_upgrade_reports_an_unreachable_server_without_its_password(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FLEETPATCH_DATABASE__URL", f"postgresql://fp:s3cret@/x?host={tmp_path}")
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "cannot upgrade" in result.output and "s3cret" not in result.output


def test_up_migrates_the_store_and_lists_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("FLEETPATCH_DATABASE__URL", raising=False)
    settings = Settings(state_dir=tmp_path / ".fleetpatch")
    events: list[tuple[str, str]] = []
    asyncio.run(Supervisor(settings, on_event=lambda *e: events.append(e)).migrate_estate())
    url = settings.database_url
    assert db.current_revision(url) == HEAD
    assert events and events[0][0] == "estate"
    assert services.local_json(settings, [], {})["database"] == url
    assert services.shared_env(settings, [])["FLEETPATCH_DATABASE__URL"] == url

"""Engine and sessions from settings, and the migrations (``upgrade``)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings


def database_url(settings: Settings) -> str:
    """``FLEETPATCH_DATABASE__URL``, else the SQLite file ``estate.db`` in the state directory."""
    raise NotImplementedError


def make_engine(url: str) -> Engine:
    raise NotImplementedError


def sessions(engine: Engine) -> sessionmaker[Session]:
    raise NotImplementedError


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (Alembic, programmatically)."""
    raise NotImplementedError

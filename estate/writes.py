"""The only functions that write the estate store; activities call them, nothing else does."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from contracts.estate import AccountSnapshot, ApplyResult, WindowRunRecord


def apply_account_snapshot(session: Session, snapshot: AccountSnapshot) -> ApplyResult:
    """Upsert every row of one systems account; mark its instances absent from the snapshot departed."""
    raise NotImplementedError


def record_window_runs(session: Session, runs: list[WindowRunRecord]) -> int:
    """Record each instance's result in a PatchWindow run (idempotent per run and instance)."""
    raise NotImplementedError


def record_aggregates(session: Session, at: datetime) -> int:
    """Write one compliance aggregate row per customer, provider and patch group at ``at``."""
    raise NotImplementedError

"""Queries the API calls. Every one takes a ``Scope`` and filters every statement by it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from estate.results import (
    ComplianceReport,
    CveExposure,
    InstanceDetail,
    InstanceFilters,
    InstancePage,
    Scope,
    TrendPoint,
)


class InvalidQuery(ValueError):
    """A bad read argument; ``field`` names it (the API answers 400 naming the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def compliance(session: Session, scope: Scope, group_by: list[str]) -> ComplianceReport:
    raise NotImplementedError


def list_instances(
    session: Session, scope: Scope, filters: InstanceFilters | None = None, limit: int = 100, cursor: str | None = None
) -> InstancePage:
    raise NotImplementedError


def instance_detail(session: Session, scope: Scope, managed_instance_id: str) -> InstanceDetail | None:
    raise NotImplementedError


def cve_exposure(session: Session, scope: Scope, cve_id: str) -> CveExposure:
    raise NotImplementedError


def trend(session: Session, scope: Scope, days: int = 30, customer: str | None = None) -> list[TrendPoint]:
    raise NotImplementedError

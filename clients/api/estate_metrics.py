"""Business gauges on the API's /metrics, read from the estate store at scrape time.

- ``fleetpatch_estate_instances{customer,provider,compliance}``: present managed instances by
  compliance (``compliant``, ``non_compliant``, ``unknown``), from ``estate.reads.compliance``;
- ``fleetpatch_estate_critical_missing_instances{customer,provider}``;
- ``fleetpatch_estate_held_rings{patch_group}``: patch rings whose latest recorded window run
  was held by the promotion gate;
- ``fleetpatch_estate_up``: 1 when the store answered, 0 when it did not (or does not exist yet).

A store that does not exist is never created here: a SQLite file that is missing reads as down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from config.settings import Settings

log = logging.getLogger("fleetpatch.api.metrics")

_STATES = ("compliant", "non_compliant", "unknown")


def held_rings(session: Any) -> dict[str, int]:
    """{patch group: rings held}, judged by each (account, group)'s latest recorded window run."""
    from sqlalchemy import and_, func, select

    from estate.schema import WindowRunRow as Run

    latest = (
        select(Run.systems_account, Run.patch_group, func.max(Run.recorded_at).label("at"))
        .group_by(Run.systems_account, Run.patch_group)
        .subquery()
    )
    query = (
        select(Run.patch_group, func.count(func.distinct(Run.systems_account)))
        .join(latest, and_(Run.systems_account == latest.c.systems_account,
                           Run.patch_group == latest.c.patch_group, Run.recorded_at == latest.c.at))
        .where(Run.outcome == "held")
        .group_by(Run.patch_group)
    )
    return {group: int(count) for group, count in session.execute(query)}


class EstateCollector(Collector):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sessions: Any = None

    def _session_factory(self) -> Any | None:
        if self._sessions is None:
            from sqlalchemy.engine import make_url

            from estate import db

            url = db.database_url(self._settings)
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).exists()):
                return None
            self._sessions = db.sessions(db.engine_from_settings(self._settings))
        return self._sessions

    def _families(self, session: Any) -> list[GaugeMetricFamily]:
        from estate import reads
        from estate.results import Scope

        instances = GaugeMetricFamily("fleetpatch_estate_instances", "Managed instances by compliance",
                                      labels=["customer", "provider", "compliance"])
        critical = GaugeMetricFamily("fleetpatch_estate_critical_missing_instances",
                                     "Instances missing a critical patch", labels=["customer", "provider"])
        for group in reads.compliance(session, Scope.everything(), ["customer", "provider"]).groups:
            customer, provider = group.keys["customer"] or "", group.keys["provider"] or ""
            for state in _STATES:
                instances.add_metric([customer, provider, state], getattr(group.counters, state))
            critical.add_metric([customer, provider], group.counters.critical_missing)
        held = GaugeMetricFamily("fleetpatch_estate_held_rings", "Patch rings held by the promotion gate",
                                 labels=["patch_group"])
        for group, count in sorted(held_rings(session).items()):
            held.add_metric([group], count)
        return [instances, critical, held]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("fleetpatch_estate_up", "1 when the estate store answered this scrape")
        families: list[GaugeMetricFamily] = []
        try:
            factory = self._session_factory()
            if factory is not None:
                with factory() as session:
                    families = self._families(session)
        except Exception as err:  # the store is down or not migrated: the gauge says so
            log.warning("estate store unreadable for metrics", extra={"error": type(err).__name__})
            factory = None
        up.add_metric([], 1 if factory is not None else 0)
        yield up
        yield from families

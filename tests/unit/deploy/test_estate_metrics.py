"""Business gauges on /metrics from the estate store: instances by compliance, critical
exposure and held rings; a store that is missing reads as down and is never created."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway, TemporalUnavailable
from config.settings import Settings
from contracts.estate import WindowRunRecord
from estate import db, writes
from tests.unit.estate.conftest import estate_url, postgres, sessions  # noqa: F401 - SQLite and PostgreSQL
from tests.unit.estate.test_reads import T0, fleet


async def _down():  # type: ignore[no-untyped-def]
    raise TemporalUnavailable("down")


async def _scrape(settings: Settings) -> dict[str, dict[tuple, float]]:
    app = create_app(settings, TemporalGateway(_down))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        text = (await http.get("/metrics")).text
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _run(account: str, group: str, outcome: str, minutes: int, mid: str) -> WindowRunRecord:
    return WindowRunRecord(window_workflow_id=f"patch-window/{account}/{group}/{minutes}", run_id=f"r{minutes}{account}",
                           systems_account=account, patch_group=group, managed_instance_id=mid, status="Success",
                           outcome=outcome, ended=T0 + timedelta(minutes=minutes))


async def test_gauges_come_from_the_estate_store(sessions, estate_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with db.transaction(sessions) as session:
        for snapshot in fleet():
            writes.apply_account_snapshot(session, snapshot)
    # on-time of account 1 held, then ran; late of account 2 held last: one held ring, "late".
    for run in ([_run("100000000001", "on-time", "held", 1, "mi-000")],
                [_run("100000000001", "on-time", "succeeded", 2, "mi-001")],
                [_run("100000000002", "late", "held", 3, "mi-100")]):
        with db.transaction(sessions) as session:
            writes.record_window_runs(session, run)
    monkeypatch.setenv("FLEETPATCH_DATABASE__URL", estate_url)
    found = await _scrape(Settings())
    assert found["fleetpatch_estate_up"][()] == 1
    instances = found["fleetpatch_estate_instances"]
    # acme/gcp: 4 compliant in the snapshot, and mi-001 patched by the on-time run since.
    assert instances[(("compliance", "compliant"), ("customer", "acme"), ("provider", "gcp"))] == 5
    assert instances[(("compliance", "non_compliant"), ("customer", "globex"), ("provider", "ec2"))] == 3
    assert sum(instances.values()) == 30
    assert found["fleetpatch_estate_critical_missing_instances"][(("customer", "acme"), ("provider", "azure"))] == 2
    assert found["fleetpatch_estate_held_rings"] == {(("patch_group", "late"),): 1}


async def test_a_missing_store_reads_as_down_and_is_not_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETPATCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("FLEETPATCH_DATABASE__URL", raising=False)
    found = await _scrape(Settings())
    assert found["fleetpatch_estate_up"][()] == 0
    assert "fleetpatch_estate_instances" not in found
    assert not (tmp_path / "state").exists()

"""The estate store's read times for a fleet of 10,000 instances over 200 systems accounts,
on SQLite (a file, WAL) and on PostgreSQL (a throwaway cluster from Debian's binaries)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
import statistics
import tempfile
import time

from sqlalchemy import text

from estate import db, reads
from estate.results import InstanceFilters, Scope

from benchmarks import estate_http
from benchmarks.estate_seed import customer_of, seed

GOAL_MS = 300.0


@contextmanager
def store(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="fp-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'estate.db'}"
        return
    from tests.support.postgres import TemporaryPostgres

    with TemporaryPostgres() as cluster:
        yield cluster.create_database("bench")


def _time(call: Callable[[], object], repeat: int) -> float:
    call()  # warm the caches and the connection pool
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def run(kind: str, instances: int = 10_000, accounts: int = 200, repeat: int = 9) -> list[tuple[str, float, str]]:
    """``(measure, median milliseconds, note)`` rows for one database kind."""
    rows = []
    with store(kind) as url:
        db.upgrade(url)
        engine = db.make_engine(url)
        factory = db.sessions(engine)
        start = time.perf_counter()
        seed(factory, instances=instances, accounts=accounts)
        if engine.dialect.name == "postgresql":
            with engine.begin() as connection:  # what autovacuum would do soon after a bulk load
                connection.execute(text("ANALYZE"))
        rows.append(("seed (write path)", (time.perf_counter() - start) * 1000, f"{instances:,} instances, {accounts} accounts"))
        admin, customer = Scope.everything(), Scope.of_customer(customer_of(0, 20))
        session = factory()
        measures: dict[str, Callable[[], object]] = {
            "compliance by customer, provider (admin)": lambda: reads.compliance(session, admin, ["customer", "provider"]),
            "compliance by customer, provider (one customer)": lambda: reads.compliance(session, customer, ["customer", "provider"]),
            "instances, first page of 100 (admin)": lambda: reads.list_instances(session, admin, limit=100),
            "instances, first page, failing first (admin)": lambda: reads.list_instances(
                session, admin, InstanceFilters(failing_first=True), limit=100),
            "instances, first page (one customer, non-compliant)": lambda: reads.list_instances(
                session, customer, InstanceFilters(compliance="non_compliant"), limit=100),
            "CVE exposure (admin)": lambda: reads.cve_exposure(session, admin, "CVE-2021-44228"),
        }
        with session:
            for name, call in measures.items():
                rows.append((name, _time(call, repeat), ""))
        engine.dispose()
        rows.extend((name, ms, "") for name, ms in estate_http.run(url, customer_of(0, 20), repeat))
    return rows


def figures(results, instances: int, which: str) -> None:  # noqa: ANN001 - a benchmarks.figures.Results
    """p5: the HTTP summary and first page as an admin; with ``both``, the slower database's."""
    compliance, page = "HTTP /v1/compliance by customer, provider (admin)", "HTTP /v1/instances, first page of 100 (admin)"
    measured: dict[str, dict[str, float]] = {}
    for kind in ("sqlite", "postgresql") if which == "both" else (which,):
        measured[kind] = {name: round(ms, 1) for name, ms, _ in run(kind, instances=instances)}
    results.set("p5_compliance_ms", max(rows[compliance] for rows in measured.values()))
    results.set("p5_instances_page_ms", max(rows[page] for rows in measured.values()))
    results.conditions["p5"] = (f"{instances:,} instances over 200 systems accounts on {', '.join(measured)};"
                                " median of 9, through the whole app in process (auth, query, JSON)")
    results.details["p5"] = measured

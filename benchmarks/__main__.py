"""``python -m benchmarks`` (``make bench``): print the numbers."""

from __future__ import annotations

import argparse
import asyncio

from rich.console import Console
from rich.table import Table

from benchmarks import verify


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--enroll", type=int, default=20, help="VMs for the enrollment benchmark (0 skips it)")
    parser.add_argument("--estate-instances", type=int, default=10_000, help="estate store size (0 skips it)")
    parser.add_argument("--estate-db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    console = Console()

    table = Table(title="identity verification (same run)")
    table.add_column("what")
    table.add_column("per second", justify="right")
    table.add_column("cost in bare RSA verifies", justify="right")
    for name, ops, cost in verify.run():
        table.add_row(name, f"{ops:,.0f}", f"{cost:.2f}")
    console.print(table)

    if args.enroll:
        from benchmarks import enroll

        console.print(f"enrolling {args.enroll} GCP VMs through the API on a local stack ...")
        report = asyncio.run(enroll.run(args.enroll))
        table = Table(title=f"enrollment: one VM, then {args.enroll} VMs registering at once")
        table.add_column("measure")
        table.add_column("value", justify="right")
        for name, value in report.items():
            table.add_row(name, value)
        console.print(table)

    if args.estate_instances:
        _estate(console, args.estate_instances, args.estate_db)


def _estate(console: Console, instances: int, which: str) -> None:
    from benchmarks import estate

    table = Table(title=f"estate store: {instances:,} instances over 200 systems accounts (median of 9)")
    for column in ("database", "measure"):
        table.add_column(column)
    for column in ("ms", "goal ms", "within goal"):
        table.add_column(column, justify="right")
    for kind in ("sqlite", "postgresql") if which == "both" else (which,):
        console.print(f"seeding the estate store on {kind} ...")
        for name, ms, note in estate.run(kind, instances=instances):
            if note:
                table.add_row(kind, f"{name} ({note})", f"{ms:,.0f}", "", "")
            else:
                table.add_row(kind, name, f"{ms:,.1f}", f"{estate.GOAL_MS:.0f}", "yes" if ms <= estate.GOAL_MS else "NO")
    console.print(table)


if __name__ == "__main__":
    main()

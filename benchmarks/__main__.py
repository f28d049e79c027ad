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


if __name__ == "__main__":
    main()

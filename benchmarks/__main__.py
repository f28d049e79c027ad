"""``python -m benchmarks`` (``make bench``): the figures of issue 13 beside their goals.

Each part runs on its own private ``fleetpatch up`` (every worker role a process of its own;
its own state directory and ports), so one part's memory does not count in another's:

- p1: enrollment throughput, latency at 10/s, ratio to a trivial workflow
- p2: a boot storm over four clouds and new customers (``fleetpatch simulate``)
- p3: one patch window over N managed instances answered by simulated agents
- p4: the orchestrator's RSS per 1,000 open enrollments, measured with at least 500 open
- p5: the estate store's summary and first page at 10,000 instances (no stack needed)

``--quick`` runs every part small (a few minutes); ``--only p1,p5`` picks parts;
``--json FILE`` writes every figure (``null`` when not run) with its goal and conditions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from pathlib import Path

from rich.console import Console

from benchmarks import figures
from benchmarks.figures import Results

PARTS = ("p1", "p2", "p3", "p4", "p5")
FULL = {"enroll": 200, "paced": 100, "storm_vms": 1000, "storm_customers": 10, "window_instances": 10_000,
        "open": 1000, "estate_instances": 10_000, "create_account_delay": "20s"}
QUICK = {"enroll": 20, "paced": 20, "storm_vms": 16, "storm_customers": 2, "window_instances": 100,
         "open": 500, "estate_instances": 1_000, "create_account_delay": "3s"}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every part at a small size")
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts: p1, p2, p3, p4, p5")
    parser.add_argument("--json", type=Path, help="write the figures as JSON to this file")
    parser.add_argument("--enroll", type=int, help="p1: VMs registering at once (default 200; quick 20)")
    parser.add_argument("--paced", type=int, help="p1: VMs registering at 10/s for the p99 (default 100; quick 20)")
    parser.add_argument("--storm-vms", type=int, help="p2: VMs of the storm (default 1000; quick 16)")
    parser.add_argument("--storm-customers", type=int, help="p2: new customers (default 10; quick 2)")
    parser.add_argument("--create-account-delay", help="p2: the local Organizations' CreateAccount delay (default 20s)")
    parser.add_argument("--window-instances", type=int, help="p3: managed instances of the window (default 10000)")
    parser.add_argument("--window-poll", type=float, default=10.0, help="p3: the agents' poll interval (s)")
    parser.add_argument("--open", type=int, help="p4: enrollments left open (default 1000; quick 500; at least 500)")
    parser.add_argument("--estate-instances", type=int, help="p5: instances in the store (default 10000)")
    parser.add_argument("--estate-db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment of the local default (worker tuning, for comparisons)")
    parser.add_argument("--profile", type=Path, help="py-spy the busiest processes during p1's burst and p3's window")
    parser.add_argument("--keep-logs", type=Path, help="copy each stack's logs under this directory")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for name, default in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    args.parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}")
    return args


def _machine() -> str:
    load = os.getloadavg()
    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},"
            f" load average at start {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")


def _stack_env(args: argparse.Namespace, **extra: str) -> dict[str, str]:
    env = dict(item.split("=", 1) for item in args.env)
    env.update(extra)
    return env


def _keep(args: argparse.Namespace, part: str) -> Path | None:
    return args.keep_logs / part if args.keep_logs else None


def _orchestrator_cache(env: dict[str, str]) -> str:
    """The orchestrator's sticky cache size the stack runs with (its setting, or the default)."""
    from config.settings import WorkerSettings

    given = env.get("FLEETPATCH_WORKER__ORCHESTRATOR__MAX_CACHED_WORKFLOWS")
    if given is not None:
        return f"{given} runs (set)"
    default = WorkerSettings().orchestrator.max_cached_workflows
    return f"{default} runs (default)" if default is not None else "1000 runs (the SDK's default)"


def _run_part(part: str, args: argparse.Namespace, results: Results, console: Console) -> None:
    from benchmarks import local

    if part == "p5":
        from benchmarks import estate

        estate.figures(results, args.estate_instances, args.estate_db)
        return
    if part == "p1":
        from benchmarks import enrollment

        with local.running(_stack_env(args), keep=_keep(args, part)) as stack:
            asyncio.run(enrollment.run(stack, results, args.enroll, args.paced, profile_dir=args.profile))
    elif part == "p2":
        from benchmarks import storm

        env = _stack_env(args, FLEETPATCH_LOCAL__CREATE_ACCOUNT_DELAY=args.create_account_delay)
        with local.running(env, keep=_keep(args, part)) as stack:
            storm.run(stack, results, args.storm_vms, args.storm_customers, args.create_account_delay)
    elif part == "p4":
        from benchmarks import open_enrollments

        env = _stack_env(args)
        with local.running(env, keep=_keep(args, part)) as stack:
            asyncio.run(open_enrollments.run(stack, results, args.open, _orchestrator_cache(env)))
    elif part == "p3":
        from benchmarks import window

        with local.running(_stack_env(args), keep=_keep(args, part)) as stack:
            asyncio.run(window.run(stack, results, args.window_instances, args.window_poll, args.profile))


def main(argv: list[str] | None = None) -> Results:
    args = parse(argv)
    console = Console(width=max(140, Console().width))
    results = Results()
    results.conditions["machine"] = _machine()
    for part in args.parts:
        console.print(f"[bold]{part}[/bold] ...")
        started = time.monotonic()
        try:
            _run_part(part, args, results, console)
        except Exception as err:  # noqa: BLE001 - one part failing must not lose the others' figures
            results.notes[part] = f"failed: {type(err).__name__}: {err!r}"[:400]
            console.print(f"[red]{part} failed: {err!r}[/red]")
            console.print_exception(max_frames=8)
        results.details.setdefault(part, {})["part_s"] = round(time.monotonic() - started, 1)
    console.print(figures.table(results))
    for part, text in results.conditions.items():
        console.print(f"[dim]{part}: {text}[/dim]")
    if args.json:
        results.write(args.json)
        console.print(f"figures written to {args.json}")
    return results


if __name__ == "__main__":
    main()

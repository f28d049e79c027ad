"""``python -m workers --role ROLE``: one worker process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from config import logging as fp_logging
from config import telemetry
from config.settings import Settings
from config.temporal import TemporalNotConfigured, connect_with_retry
from contracts.providers import WorkerRole
from workers import runner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers")
    parser.add_argument("--role", required=True, choices=[r.value for r in WorkerRole])
    args = parser.parse_args(argv)
    settings = Settings.load()
    role = WorkerRole(args.role)
    fp_logging.configure(f"worker-{role.value}", level=settings.log_level, fmt=settings.log_format)
    try:
        return asyncio.run(_main(role, settings))
    except KeyboardInterrupt:
        return 0


async def _main(role: WorkerRole, settings: Settings) -> int:
    overrides = telemetry.connect_overrides(
        settings.telemetry, f"fleetpatch-worker-{role.value}", metrics=True
    )
    try:
        client = await connect_with_retry(settings, **overrides)
    except (TemporalNotConfigured, ConnectionError) as err:
        logging.getLogger("fleetpatch.worker").error(str(err))
        return 2
    await runner.run(client, role, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

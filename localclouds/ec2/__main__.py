"""``python -m localclouds.ec2 --host H --port P --state-dir DIR --aws-endpoint URL``.

The per-region certificates of ``--regions`` are generated (or loaded) before the server starts
listening, so ``/__fleetpatch/health`` answering 200 means ready; other regions get theirs on
first use. SIGTERM and SIGINT stop the server gracefully and the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from localclouds.ec2.app import create_app
from localclouds.ec2.instances import MotoInstances
from localclouds.ec2.layout import Ec2Paths
from localclouds.ec2.signing import DEFAULT_REGIONS, RegionSigners

#: Seconds a stop waits for open connections (an idle keep-alive TLS client may never answer
#: the close, and asyncio would wait 30 s for it) before they are cut.
GRACE = 3


class _Server(uvicorn.Server):
    """uvicorn without its signal capture (which re-raises the signal after shutdown)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _clock() -> datetime:
    return datetime.now(UTC)


async def serve(args: argparse.Namespace) -> None:
    signers = RegionSigners(Ec2Paths.under(args.state_dir))
    signers.prepare(tuple(r.strip() for r in args.regions.split(",") if r.strip()))
    instances = MotoInstances(args.aws_endpoint, role_name=args.role_name, clock=_clock)
    server = _Server(
        uvicorn.Config(
            create_app(instances, signers, _clock),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            server_header=False,
            timeout_graceful_shutdown=GRACE,
        )
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    await server.serve()
    if not server.started:
        raise SystemExit(f"EC2 IMDS failed to start on port {args.port}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m localclouds.ec2", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8705)
    parser.add_argument("--state-dir", type=Path, default=Path(".fleetpatch"))
    parser.add_argument(
        "--aws-endpoint", default="http://127.0.0.1:8701", help="the local AWS (moto)"
    )
    parser.add_argument("--regions", default=",".join(DEFAULT_REGIONS))
    parser.add_argument(
        "--role-name",
        default="OrganizationAccountAccessRole",
        help="role assumed in each account to read its instances (moto needs none to exist)",
    )
    parser.add_argument("--log-level", default="warning")
    asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()

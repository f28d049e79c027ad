"""``python -m localclouds.azure --host H --port P --arm-port A --state-dir DIR``.

One process, two listeners: IMDS + managed identity on plain HTTP (``--port``) and ARM over TLS
(``--arm-port``). All keys and certificates are generated (or loaded) before either listener
starts, so ``/__fleetpatch/health`` answering 200 means ready. SIGTERM and SIGINT stop both
listeners gracefully and the process exits 0.
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

from localclouds.azure.arm_app import create_arm_app
from localclouds.azure.imds_app import create_imds_app
from localclouds.azure.layout import AzurePaths
from localclouds.azure.material import DEFAULT_LOCATIONS, ensure_material
from localclouds.azure.vms import VmStore

#: Seconds a stop waits for open connections (an idle keep-alive TLS client may never answer
#: the close, and asyncio would wait 30 s for it) before they are cut.
GRACE = 3


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :func:`serve` (two servers, one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _clock() -> datetime:
    return datetime.now(UTC)


async def serve(args: argparse.Namespace) -> None:
    paths = AzurePaths.under(args.state_dir)
    locations = tuple(x.strip() for x in args.locations.split(",") if x.strip())
    material = ensure_material(paths, host=args.host, locations=locations)
    store = VmStore(paths.vms)
    imds = _Server(
        uvicorn.Config(
            create_imds_app(material, store, _clock),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            server_header=False,
            timeout_graceful_shutdown=GRACE,
        )
    )
    arm = _Server(
        uvicorn.Config(
            create_arm_app(material, store, _clock),
            host=args.host,
            port=args.arm_port,
            log_level=args.log_level,
            server_header=False,
            timeout_graceful_shutdown=GRACE,
            ssl_certfile=str(material.arm_tls.cert_path),
            ssl_keyfile=str(material.arm_tls.key_path),
        )
    )
    paths.arm_port.write_text(f"{args.arm_port}\n")

    def stop() -> None:
        imds.should_exit = arm.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    # ARM first: health is served by IMDS, so healthy implies both are listening.
    arm_task = asyncio.create_task(arm.serve())
    while not arm.started and not arm_task.done():
        await asyncio.sleep(0.02)
    if arm_task.done():
        await arm_task
        raise SystemExit(f"ARM listener failed to start on port {args.arm_port}")
    imds_task = asyncio.create_task(imds.serve())
    await asyncio.gather(arm_task, imds_task)
    if not imds.started:
        raise SystemExit(f"IMDS listener failed to start on port {args.port}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m localclouds.azure", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8703, help="IMDS + managed identity (http)")
    parser.add_argument("--arm-port", type=int, default=8704, help="ARM (https)")
    parser.add_argument("--state-dir", type=Path, default=Path(".fleetpatch"))
    parser.add_argument(
        "--locations",
        default=",".join(DEFAULT_LOCATIONS),
        help="IMDS signer certificates to issue before reporting healthy (others on first use)",
    )
    parser.add_argument("--log-level", default="warning")
    asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()

"""``python -m localclouds.fleet --host 127.0.0.1 --port P --state-dir DIR [--local-json PATH]``.

The other local clouds and the API are read from ``DIR/local.json`` (written by ``fleetpatch
up``) when VMs are booted, so the fleet host can start before them. It holds no keys of its own:
health answers as soon as it listens. SIGTERM/SIGINT stop the agents and the server cleanly.
"""

from __future__ import annotations

import logging
from pathlib import Path

from localclouds.addresses import base_url
from localclouds.fleet import fleet_dir
from localclouds.fleet.app import create_app
from localclouds.fleet.host import FleetHost, HostSettings
from localclouds.serving import arguments, listener, run


def main(argv: list[str] | None = None) -> None:
    parser = arguments("localclouds.fleet", __doc__, port=8708)
    parser.add_argument("--local-json", type=Path, default=None, help="default: DIR/local.json")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="agents' GetMessages (s)")
    parser.add_argument("--ping-interval", type=float, default=60.0, help="agents' pings (s)")
    parser.add_argument("--command-duration", type=float, default=2.0, help="seconds per command")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="0..1, per command")
    parser.add_argument("--boot-concurrency", type=int, default=6)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    state_dir = args.state_dir.resolve()
    fleet_dir(state_dir).mkdir(parents=True, exist_ok=True)
    settings = HostSettings(
        fleet_url=base_url(args.host, args.port),
        local_json=args.local_json or state_dir / "local.json",
        poll_interval=args.poll_interval, ping_interval=args.ping_interval,
        command_duration=args.command_duration, failure_rate=args.failure_rate,
        boot_concurrency=args.boot_concurrency,
    )
    run(listener(create_app(FleetHost(state_dir, settings)), args.host, args.port, args.log_level))


if __name__ == "__main__":
    main()

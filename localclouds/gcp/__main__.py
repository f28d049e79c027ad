"""``python -m localclouds.gcp --host 127.0.0.1 --port P --state-dir DIR``.

Keys are generated (or loaded) before the server starts listening, so ``/__fleetpatch/health``
answering 200 means ready. SIGTERM and SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from localclouds.gcp.app import create_app
from localclouds.serving import listener, run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m localclouds.gcp", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument("--state-dir", type=Path, default=Path(".fleetpatch"))
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    # The metadata answers carry their own "Server" header, like the real one.
    run(listener(create_app(args.state_dir), args.host, args.port, args.log_level))


if __name__ == "__main__":
    main()

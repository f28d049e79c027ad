"""``python -m localclouds.gcp --host 127.0.0.1 --port P --state-dir DIR``.

Keys are generated (or loaded) before the server starts listening, so ``/__fleetpatch/health``
answering 200 means ready. uvicorn stops gracefully on SIGTERM and SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

import uvicorn

from localclouds.gcp.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m localclouds.gcp", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument("--state-dir", type=Path, default=Path(".fleetpatch"))
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    app = create_app(args.state_dir)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler
    # that was installed before it: make that one a clean exit (status 0, no traceback).
    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, _exit_cleanly)
    # server_header off: the metadata answers carry their own "Server" header, like the real one.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, server_header=False)


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


if __name__ == "__main__":
    main()

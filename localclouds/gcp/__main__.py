"""``python -m localclouds.gcp --host 127.0.0.1 --port P --state-dir DIR``.

Keys are generated (or loaded) before the server starts listening, so ``/__fleetpatch/health``
answering 200 means ready. SIGTERM and SIGINT stop it cleanly.
"""

from __future__ import annotations

from localclouds.gcp.app import create_app
from localclouds.serving import arguments, listener, run


def main(argv: list[str] | None = None) -> None:
    args = arguments("localclouds.gcp", __doc__, port=8702).parse_args(argv)
    run(listener(create_app(args.state_dir), args.host, args.port, args.log_level))


if __name__ == "__main__":
    main()

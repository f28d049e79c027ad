"""``python -m localclouds.aws --host H --port P --state-dir DIR [--create-account-delay S]``.

The state is saved under ``DIR/aws/`` every ``--save-interval`` seconds and at SIGTERM, and
loaded at start; a saved state that cannot be loaded stops the start (exit code 3) with a message
that says so, never a silently empty cloud.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import timedelta

from localclouds.aws import MANAGEMENT_ACCOUNT, REGION, agent_packages, agent_signing, iam_policies, state_path
from localclouds.aws.organizations import create_organization
from localclouds.aws.persistence import StateNotRestored, StateStore
from localclouds.aws.server import make_app, make_server
from localclouds.serving import arguments, run_wsgi


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = arguments("localclouds.aws", __doc__, port=8701, log_level=False)
    parser.add_argument("--create-account-delay", type=float, default=3.0,
                        help="seconds until an Organizations CreateAccount request is decided")
    parser.add_argument("--ping-timeout", type=float, default=600.0,
                        help="seconds without an agent ping before PingStatus is ConnectionLost")
    parser.add_argument("--save-interval", type=float, default=5.0,
                        help="seconds between state saves (when something changed); 0: at exit only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Like real IAM, know the AWS-managed policies fleetpatch attaches (AmazonSSMManagedInstanceCore).
    iam_policies.install()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger(__name__)
    state_path(args.state_dir).mkdir(parents=True, exist_ok=True)
    app = make_app(
        create_account_delay=timedelta(seconds=args.create_account_delay),
        ping_timeout=timedelta(seconds=args.ping_timeout),
        default_region=REGION,
    )
    store = StateStore(state_path(args.state_dir), app, interval=args.save_interval)
    log = logging.getLogger(__name__)
    try:
        restored = store.load()
    except StateNotRestored as err:
        log.error("%s", err)
        return 3
    create_organization(MANAGEMENT_ACCOUNT, REGION)
    signer, _ = agent_signing.ensure_key(args.state_dir)  # the stand-ins' signing key, like a local CA
    agent_packages.publish(MANAGEMENT_ACCOUNT, REGION, signer)  # the SSM agent's download location
    log.info("local AWS: %s", f"state restored from {store.path}" if restored else "fresh state")
    store.start()
    try:
        run_wsgi(make_server(args.host, args.port, app))
    finally:
        store.close()
        log.info("local AWS state saved to %s", store.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

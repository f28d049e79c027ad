"""``python -m localclouds.ec2 --host H --port P --state-dir DIR --aws-endpoint URL``.

The per-region certificates of ``--regions`` are generated (or loaded) before the server starts
listening, so ``/__fleetpatch/health`` answering 200 means ready; other regions get theirs on
first use. SIGTERM and SIGINT stop the server gracefully and the process exits 0.
"""

from __future__ import annotations

from datetime import UTC, datetime

from localclouds.ec2.app import create_app
from localclouds.ec2.instances import MotoInstances
from localclouds.ec2.layout import Ec2Paths
from localclouds.ec2.signing import DEFAULT_REGIONS, RegionSigners
from localclouds.serving import arguments, listener, run


def _clock() -> datetime:
    return datetime.now(UTC)


def main(argv: list[str] | None = None) -> None:
    parser = arguments("localclouds.ec2", __doc__, port=8705)
    parser.add_argument(
        "--aws-endpoint", default="http://127.0.0.1:8701", help="the local AWS (moto)"
    )
    parser.add_argument("--regions", default=",".join(DEFAULT_REGIONS))
    parser.add_argument(
        "--role-name",
        default="OrganizationAccountAccessRole",
        help="role assumed in each account to read its instances (moto needs none to exist)",
    )
    args = parser.parse_args(argv)
    signers = RegionSigners(Ec2Paths.under(args.state_dir))
    signers.prepare(tuple(r.strip() for r in args.regions.split(",") if r.strip()))
    instances = MotoInstances(args.aws_endpoint, role_name=args.role_name, clock=_clock)
    run(listener(create_app(instances, signers, _clock), args.host, args.port, args.log_level))


if __name__ == "__main__":
    main()

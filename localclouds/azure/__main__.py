"""``python -m localclouds.azure --host H --port P --arm-port A --state-dir DIR``.

One process, two listeners: IMDS + managed identity on plain HTTP (``--port``) and ARM over TLS
(``--arm-port``). All keys and certificates are generated (or loaded) before either listener
starts, so ``/__fleetpatch/health`` answering 200 means ready. SIGTERM and SIGINT stop both
listeners gracefully and the process exits 0.
"""

from __future__ import annotations

from datetime import UTC, datetime

from localclouds.azure.app import create_arm_app, create_imds_app
from localclouds.azure.layout import AzurePaths
from localclouds.azure.material import DEFAULT_LOCATIONS, ensure_material
from localclouds.azure.vms import VmStore
from localclouds.serving import arguments, listener, run


def _clock() -> datetime:
    return datetime.now(UTC)


def main(argv: list[str] | None = None) -> None:
    parser = arguments("localclouds.azure", __doc__, port=8703)
    parser.add_argument("--arm-port", type=int, default=8704, help="ARM (https)")
    parser.add_argument(
        "--locations",
        default=",".join(DEFAULT_LOCATIONS),
        help="IMDS signer certificates to issue before reporting healthy (others on first use)",
    )
    args = parser.parse_args(argv)
    paths = AzurePaths.under(args.state_dir)
    locations = tuple(x.strip() for x in args.locations.split(",") if x.strip())
    material = ensure_material(paths, host=args.host, locations=locations)
    store = VmStore(paths.vms)
    imds = listener(create_imds_app(material, store, _clock), args.host, args.port, args.log_level)
    arm = listener(
        create_arm_app(material, store, _clock), args.host, args.arm_port, args.log_level,
        ssl_certfile=str(material.arm_tls.cert_path), ssl_keyfile=str(material.arm_tls.key_path),
    )
    paths.arm_port.write_text(f"{args.arm_port}\n")
    # ARM first: health is served by IMDS, so healthy implies both are listening.
    run(arm, imds)


if __name__ == "__main__":
    main()

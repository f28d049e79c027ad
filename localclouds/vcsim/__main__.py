"""``python -m localclouds.vcsim --host 127.0.0.1 --port P --state-dir DIR [--guest-port G]``.

Order of start-up, so that health means ready: signing key (generated once under DIR/vcsim/),
vcsim binary (built by scripts/build-vcsim.sh when missing or stale), guest tools service on G
(health 503), vcsim on P, custom attribute ``rackspace-addon-patching=true`` on the VMs named by
``--label-vms`` (none by default), tokens for them when ``--customer`` is given, the VMs saved
by the last run re-created (``localclouds/vcsim/inventory.py``); then health on G answers 200.
While it runs it saves the VMs made after start every ``--save-every`` seconds and on stop.
Stops vcsim and itself on SIGTERM/SIGINT, and exits non-zero when vcsim dies on its own.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from clouds.vmware.identity import DEFAULT_PATCHING_LABEL
from clouds.vmware.vsphere import VcenterEndpoint, VsphereClient
from localclouds.vcsim import PASSWORD, USERNAME, VCENTER_ID, guest_port_for
from localclouds.vcsim.build import ensure_built
from localclouds.vcsim import inventory
from localclouds.vcsim.guest import GuestTools, make_server
from localclouds.vcsim.keys import ensure_keys
from localclouds.vcsim.process import start_vcsim

#: No built-in VM is labelled by default: each would be a labelled VM that never enrolls, reported
#: by every reconcile. Tests and demos that want one label it (``--label-vms`` or the vSphere API).
DEFAULT_LABELLED = ""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m localclouds.vcsim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8706)
    parser.add_argument("--state-dir", type=Path, default=Path(".fleetpatch"))
    parser.add_argument("--guest-port", type=int, default=None, help="default: --port + 1")
    parser.add_argument("--binary", type=Path, default=None, help="a vcsim binary; default: build")
    parser.add_argument(
        "--label-vms",
        default=DEFAULT_LABELLED,
        help=f"comma-separated VMs to label {DEFAULT_PATCHING_LABEL}=true ('' for none)",
    )
    parser.add_argument("--customer", default=None, help="issue tokens to labelled VMs for it")
    parser.add_argument("--token-ttl-hours", type=float, default=24.0)
    parser.add_argument("--save-every", type=float, default=3.0, help="seconds between inventory saves")
    return parser


def _seed(client: VsphereClient, names: list[str], customer: str | None, ttl: timedelta,
          signing_key: Path) -> None:
    for name in names:
        vm = client.find_vm_by_name(name)
        if vm is None:
            raise SystemExit(f"vcsim: --label-vms names an unknown VM {name!r}")
        client.set_custom_attribute(vm, DEFAULT_PATCHING_LABEL, "true")
    if customer:
        issued = client.issue_tokens(
            VCENTER_ID, customer, signing_key.read_text(), now=datetime.now(UTC), ttl=ttl
        )
        print(f"vcsim: tokens written to {', '.join(n for n, _ in issued)}", file=sys.stderr)


def _save(endpoint: VcenterEndpoint, builtin: set[str], path: Path) -> None:
    """Note the VMs made after start; a failed read keeps the last file (never an empty one)."""
    try:
        with VsphereClient(endpoint) as client:
            inventory.save(path, inventory.snapshot(client, builtin))
    except Exception as err:  # noqa: BLE001 - the next round tries again
        print(f"vcsim: saving the inventory failed: {err}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    state = args.state_dir.resolve()
    (state / "vcsim").mkdir(parents=True, exist_ok=True)
    signing_key, _ = ensure_keys(state)
    binary = args.binary or ensure_built()
    guest_port = args.guest_port or guest_port_for(args.port)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    endpoint = VcenterEndpoint(
        url=f"http://{args.host}:{args.port}/sdk", username=USERNAME, password=PASSWORD
    )
    tools = GuestTools(lambda: VsphereClient(endpoint))
    server = make_server(args.host, guest_port, tools)
    threading.Thread(target=server.serve_forever, name="guest-tools", daemon=True).start()
    vcsim = start_vcsim(
        binary, host=args.host, port=args.port, log_path=state / "vcsim" / "vcsim.log"
    )
    saved_at = inventory.inventory_path(state)
    builtin: set[str] = set()
    try:
        names = [n.strip() for n in args.label_vms.split(",") if n.strip()]
        with VsphereClient(endpoint) as client:
            builtin = {f.instance_uuid for f in client.all_vms()}
            _seed(client, names, args.customer, timedelta(hours=args.token_ttl_hours), signing_key)
            made = inventory.restore(client, inventory.load(saved_at))
        if made:
            print(f"vcsim: re-created {len(made)} saved VM(s)", file=sys.stderr)
        tools.ready.set()
        print(f"vcsim: {vcsim.url} (guest tools http://{args.host}:{guest_port}/vm/NAME)",
              file=sys.stderr, flush=True)
        while not stop.wait(args.save_every):
            if vcsim.popen.poll() is not None:
                print(f"vcsim: exited on its own ({vcsim.popen.returncode})", file=sys.stderr)
                return 1
            _save(endpoint, builtin, saved_at)
        _save(endpoint, builtin, saved_at)
        return 0
    finally:
        tools.ready.clear()
        server.shutdown()
        server.server_close()
        tools.close()
        vcsim.stop()


if __name__ == "__main__":
    sys.exit(main())

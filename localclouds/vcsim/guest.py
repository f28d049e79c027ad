"""The "guest tools" stand-in: what VMware Tools and the SMBIOS table give a simulated guest.

A real guest reads its fleetpatch token with ``vmware-rpctool "info-get guestinfo.KEY"`` (the
VM's extraConfig ``guestinfo.KEY``, through the VMX backdoor) and its BIOS UUID from
/sys/class/dmi/id/product_uuid. Simulated guests have no VMX, so this service reads the same
values from vcsim through pyvmomi, per VM:

* ``GET /vm/{name}/guestinfo/{key}`` -> 200 text value, or 404 ``No value found``;
* ``GET /vm/{name}/bios-uuid`` -> 200 ``config.uuid`` in lowercase; ``?byte_order=legacy``
  swaps the first three fields, as guests on older virtual hardware see it;
* ``GET /__fleetpatch/health`` -> 200 once ``ready`` is set, 503 before.

It runs in the wrapper's process on its own port (``--guest-port``), in a thread.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from clouds.vmware.biosuuid import format_uuid, parse_uuid, swap_first_fields
from clouds.vmware.vsphere import VsphereClient
from contracts.errors import FleetpatchError
from localclouds.addresses import HEALTH_BODY, HEALTH_PATH

_ROUTE = re.compile(r"/vm/(?P<name>[^/]+)/(?:guestinfo/(?P<key>[A-Za-z0-9._-]{1,128})|(?P<bios>bios-uuid))\Z")


class GuestTools:
    """Answers guest-side reads for every VM of one vcsim; thread-safe (one session, a lock)."""

    def __init__(self, client_factory: Callable[[], VsphereClient]) -> None:
        self._factory = client_factory
        self._client: VsphereClient | None = None
        self._lock = threading.Lock()
        self.ready = threading.Event()

    def _vm(self, client: VsphereClient, name: str) -> Any:
        return client.find_vm_by_name(name)

    def guestinfo(self, name: str, key: str) -> str | None:
        """``guestinfo.KEY`` of VM ``name``; None when unset. LookupError: no such VM."""
        with self._lock:
            client = self._session()
            vm = self._vm(client, name)
            if vm is None:
                raise LookupError(name)
            return client.read_extra_config(vm, f"guestinfo.{key}")

    def bios_uuid(self, name: str, legacy: bool = False) -> str:
        """The VM's BIOS UUID as the guest's SMBIOS table shows it. LookupError: no such VM."""
        with self._lock:
            client = self._session()
            vm = self._vm(client, name)
            if vm is None:
                raise LookupError(name)
            raw = parse_uuid(client.vm_facts(vm).bios_uuid)
        if raw is None:
            raise LookupError(name)
        return format_uuid(swap_first_fields(raw) if legacy else raw)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _session(self) -> VsphereClient:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def _reset(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None


def make_server(host: str, port: int, tools: GuestTools) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) answering the routes above."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "fleetpatch-guest-tools"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass  # quiet: tokens travel in these answers' bodies, never in URLs, but stay quiet

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            parts = urlsplit(self.path)
            if parts.path == HEALTH_PATH:
                if tools.ready.is_set():
                    self._send(200, json.dumps(HEALTH_BODY), "application/json")
                else:
                    self._send(503, json.dumps({"status": "starting"}), "application/json")
                return
            match = _ROUTE.match(parts.path)
            if not match:
                self._send(404, "not found\n")
                return
            name = unquote(match["name"])
            try:
                if match["bios"]:
                    legacy = parse_qs(parts.query).get("byte_order") == ["legacy"]
                    self._send(200, tools.bios_uuid(name, legacy) + "\n")
                    return
                value = tools.guestinfo(name, match["key"])
            except LookupError:
                self._send(404, f"no VM named {name}\n")
                return
            except FleetpatchError as err:
                tools._reset()  # a new session next time (vcsim restarted, session expired)
                self._send(502, f"vCenter: {err.type.value}\n")
                return
            if value is None:
                self._send(404, "No value found\n")
            else:
                self._send(200, value)

        def _send(self, status: int, body: str, ctype: str = "text/plain; charset=utf-8") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server

"""Per-instance EC2 IMDS with IMDSv2 only (``HttpTokens: required``), over plain HTTP.

An instance's IMDS is ``/vm/{account}/{region}/{instance-id}`` followed by the real paths:

- ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds: 1..21600`` returns a
  session token (400 without a valid TTL; 403 when ``X-Forwarded-For`` is present, as EC2
  refuses proxied token requests). A token works only for the instance it was issued for.
- every GET needs ``X-aws-ec2-metadata-token`` (401 when missing, unknown or expired):
  ``/latest/dynamic/instance-identity/{document,signature,rsa2048,pkcs7}``,
  ``/latest/meta-data/{instance-id,instance-type,ami-id,local-ipv4,placement/...}`` and, when
  the instance allows tags in metadata, ``/latest/meta-data/tags/instance[/KEY]``.

Instances come from the local AWS (moto); one that does not exist there, or is not pending or
running, has no IMDS (404).
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response

from localclouds.ec2.instances import MotoInstances, identity_document, render
from localclouds.ec2.signing import REGION, RegionSigners
from localclouds.serving import emulator_app

TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "x-aws-ec2-metadata-token"
MAX_TTL = 21600
MAX_TOKENS = 10_000
ACCOUNT = re.compile(r"^\d{12}$")
INSTANCE = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
RUNNING = frozenset({"pending", "running"})

_PAGE = """<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>{status} - {reason}</title>
 </head>
 <body>
  <h1>{status} - {reason}</h1>
 </body>
</html>
"""
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
}


def _text(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body,
        status_code=status,
        media_type="text/plain",
        headers={"Server": "EC2ws", **(headers or {})},
    )


def _error(status: int) -> Response:
    page = _PAGE.format(status=status, reason=_REASONS[status])
    return Response(page, status_code=status, media_type="text/html", headers={"Server": "EC2ws"})


class TokenStore:
    """IMDSv2 session tokens, each bound to one instance, kept until they expire."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, datetime]] = {}

    def issue(self, vm: str, ttl: int) -> str:
        token = "AQAEA" + secrets.token_urlsafe(42)
        now = self._clock()
        with self._lock:
            if len(self._tokens) >= MAX_TOKENS:
                self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
                if len(self._tokens) >= MAX_TOKENS:  # still full: drop the oldest-expiring
                    for t, _ in sorted(self._tokens.items(), key=lambda kv: kv[1][1])[
                        : MAX_TOKENS // 10
                    ]:
                        del self._tokens[t]
            self._tokens[token] = (vm, now + timedelta(seconds=ttl))
        return token

    def valid(self, token: str | None, vm: str) -> bool:
        if not token:
            return False
        with self._lock:
            entry = self._tokens.get(token)
        return entry is not None and entry[0] == vm and entry[1] > self._clock()


@dataclass(frozen=True)
class Imds:
    """What the IMDS routes read: instances from the local AWS, the signers, the tokens."""

    instances: MotoInstances
    signers: RegionSigners
    tokens: TokenStore
    clock: Callable[[], datetime]


def _imds(request: Request) -> Imds:
    return request.app.state.imds


router = APIRouter()


@router.api_route(
    "/vm/{account}/{region}/{instance_id}/latest/{rest:path}",
    methods=["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"],
)
def metadata(
    account: str,
    region: str,
    instance_id: str,
    rest: str,
    request: Request,
    state: Annotated[Imds, Depends(_imds)],
) -> Response:
    if not (
        ACCOUNT.fullmatch(account) and REGION.fullmatch(region) and INSTANCE.fullmatch(instance_id)
    ):
        return _error(404)
    vm = f"{account}/{region}/{instance_id}"
    if rest == "api/token":
        return _token(request, vm, state) if request.method == "PUT" else _error(405)
    if request.method not in ("GET", "HEAD"):
        return _error(405)
    if not state.tokens.valid(request.headers.get(TOKEN_HEADER), vm):
        return _error(401)
    inst = _running(state, account, region, instance_id)
    if inst is None:
        return _error(404)
    body = _serve(rest.rstrip("/"), inst, region, state)
    return _error(404) if body is None else _text(body)


def _running(state: Imds, account: str, region: str, instance_id: str) -> dict[str, Any] | None:
    inst = state.instances.describe(account, region, instance_id)
    if inst is None or (inst.get("State") or {}).get("Name") not in RUNNING:
        return None
    return inst


def _token(request: Request, vm: str, state: Imds) -> Response:
    if "x-forwarded-for" in request.headers:
        return _error(403)
    raw = request.headers.get(TTL_HEADER, "")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TTL:
        return _error(400)
    if _running(state, *vm.split("/")) is None:
        return _error(404)
    return _text(state.tokens.issue(vm, int(raw)), headers={TTL_HEADER: raw})


def _serve(path: str, inst: dict[str, Any], region: str, state: Imds) -> str | None:
    document = render(identity_document(inst, region))
    signers, now = state.signers, state.clock()
    identity = {
        "dynamic/instance-identity/document": lambda: document.decode(),
        "dynamic/instance-identity/signature": lambda: signers.signature(document, region),
        "dynamic/instance-identity/rsa2048": lambda: signers.rsa2048(document, region, now),
        "dynamic/instance-identity/pkcs7": lambda: signers.pkcs7(document, region, now),
        "dynamic/instance-identity": lambda: "document\npkcs7\nrsa2048\nsignature",
        "dynamic": lambda: "instance-identity/",
    }
    if path in identity:
        return identity[path]()
    return _meta_data(path, inst, region)


def _meta_data(path: str, inst: dict[str, Any], region: str) -> str | None:
    placement = inst.get("Placement") or {}
    values = {
        "meta-data/instance-id": inst["InstanceId"],
        "meta-data/instance-type": inst.get("InstanceType", ""),
        "meta-data/ami-id": inst.get("ImageId", ""),
        "meta-data/local-ipv4": inst.get("PrivateIpAddress", ""),
        "meta-data/local-hostname": inst.get("PrivateDnsName", ""),
        "meta-data/placement/region": region,
        "meta-data/placement/availability-zone": placement.get("AvailabilityZone", ""),
    }
    tags = {t["Key"]: t.get("Value", "") for t in inst.get("Tags") or []}
    tags_allowed = (inst.get("MetadataOptions") or {}).get("InstanceMetadataTags") == "enabled"
    if path in values:
        return values[path]
    if path == "meta-data":
        return "ami-id\ninstance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\nplacement/" + (
            "\ntags/" if tags_allowed else ""
        )
    if path == "meta-data/placement":
        return "availability-zone\nregion"
    if tags_allowed and path == "meta-data/tags/instance":
        return "\n".join(tags)
    if tags_allowed and path.startswith("meta-data/tags/instance/"):
        return tags.get(path.removeprefix("meta-data/tags/instance/"))
    return None


def create_app(
    instances: MotoInstances, signers: RegionSigners, clock: Callable[[], datetime]
) -> FastAPI:
    state = Imds(instances, signers, TokenStore(clock), clock)
    return emulator_app("fleetpatch local EC2 IMDS", [router], imds=state)

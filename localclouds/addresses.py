"""What every local cloud shares about its addresses: the one health route, and URLs for hosts
that may be IPv6 literals. Pure (no server imports), so ``describe()`` functions can use it."""

from __future__ import annotations

#: Every local cloud answers ``GET HEALTH_PATH`` with 200 and :data:`HEALTH_BODY` once ready.
HEALTH_PATH = "/__fleetpatch/health"
HEALTH_BODY = {"status": "ok"}


def url_host(host: str) -> str:
    """``host`` as it stands in a URL: IPv6 literals in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def base_url(host: str, port: int, scheme: str = "http") -> str:
    return f"{scheme}://{url_host(host)}:{port}"


def health_url(host: str, port: int) -> str:
    return base_url(host, port) + HEALTH_PATH

"""The startup scripts a VM runs at boot: bash for Linux, PowerShell for Windows.

The API serves them at ``GET /v1/startup/{provider}[?os=windows]`` through :func:`render`,
which bakes in the provider, the API's base URL, (GCP) the token audience the API expects, the
SSM agent's download location and the trust anchor its packages are verified against
(:mod:`clients.startup.agent_trust`).
Everything a script needs at run time comes from its cloud's metadata service on the real
paths; for local runs one variable moves the metadata base URL (``FLEETPATCH_METADATA_URL``)
and one the API (``FLEETPATCH_API_URL``). See the header of each script for the rest.

The baked-in values are checked here rather than escaped: a URL or audience with a character
that would need quoting in bash or PowerShell is refused (``ValueError``), so a served script can
never carry injected code.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Literal

from clients.startup.agent_trust import AgentTrust, expiry_warning
from clients.startup.agent_trust import from_settings as trust_from_settings
from config.settings import AwsSettings
from contracts.providers import Provider

__all__ = ["AgentTrust", "ScriptOs", "expiry_warning", "media_type", "render", "script_name", "template",
           "trust_from_settings"]

ScriptOs = Literal["linux", "windows"]

_PLACEHOLDERS = ("@@PROVIDER@@", "@@API_URL@@", "@@AUDIENCE@@", "@@AGENT_URL@@", "@@AGENT_KEYRING@@",
                 "@@AGENT_FINGERPRINTS@@", "@@AGENT_WINDOWS_SIGNER@@", "@@AGENT_WINDOWS_THUMBPRINTS@@")
#: AWS's own SSM agent download location for a region (settings ``aws.agent_download_url``).
DEFAULT_AGENT_URL = "https://s3.{region}.amazonaws.com/amazon-ssm-{region}/latest"
#: What a baked-in URL may contain: RFC 3986 characters without quotes, '$', '`', '\\', ';'...
_SAFE_URL = re.compile(r"^https?://[A-Za-z0-9._~:/?#\[\]@!&()*+,=%-]{1,2000}$")
_FORBIDDEN = set("'\"$`\\;\n\r")


def script_name(os: str) -> str:
    """The template file for an ``os`` query value: ``windows`` -> PowerShell, else bash."""
    return "register.ps1" if os == "windows" else "register.sh"


def media_type(os: str) -> str:
    """The Content-Type to serve a rendered script with."""
    return "text/plain; charset=utf-8" if os == "windows" else "text/x-shellscript; charset=utf-8"


def template(os: str = "linux") -> str:
    """The unrendered script text (placeholders included)."""
    return resources.files(__name__).joinpath(script_name(os)).read_text(encoding="utf-8")


def _checked_url(what: str, value: str) -> str:
    if not _SAFE_URL.match(value) or _FORBIDDEN & set(value):
        raise ValueError(f"{what} {value!r} is not an http(s) URL that can be baked into a script")
    return value


def render(provider: Provider | str, os: str, api_url: str, audience: str, agent_url: str | None = None,
           agent_trust: AgentTrust | None = None) -> str:
    """The startup script for ``provider`` on ``os`` (``windows`` or anything else for Linux).

    ``api_url`` is the API's public base URL (e.g. ``https://fleetpatch.example``) and
    ``audience`` the GCP identity-token audience the API verifies (settings ``gcp.audience``);
    ``agent_url`` the SSM agent download location the script installs a missing agent from
    (default: AWS's own for us-east-1), ``agent_trust`` what its packages must be signed by
    (default: AWS's signing key and Authenticode signer, shipped with fleetpatch).
    Raises ``ValueError`` for an unknown provider or a URL unsafe to bake in.
    """
    chosen = Provider(provider)  # ValueError for anything else
    agent = agent_url or DEFAULT_AGENT_URL.replace("{region}", "us-east-1")
    trust = agent_trust or trust_from_settings(AwsSettings())
    values = (chosen.value, _checked_url("api_url", api_url.rstrip("/")),
              _checked_url("audience", audience), _checked_url("agent_url", agent.rstrip("/")),
              trust.keyring_b64, " ".join(trust.fingerprints), trust.windows_signer,
              ",".join(trust.windows_thumbprints))
    text = template(os)
    for placeholder, value in zip(_PLACEHOLDERS, values, strict=True):
        text = text.replace(placeholder, value)
    return text

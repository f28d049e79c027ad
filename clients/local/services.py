"""The processes of the embedded default (``fleetpatch up``): what to run and how to tell it is ready."""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clients.local.tools import temporal_cli
from config.settings import Settings
from contracts import search_attributes
from contracts.providers import WorkerRole
from estate.db import display_url

HOST = "127.0.0.1"


@dataclass
class ServiceSpec:
    """One supervised process."""

    name: str
    argv: list[str]
    health_url: str | None = None  # GET answering 200 when ready; None: started is ready
    env: dict[str, str] = field(default_factory=dict)
    restart: bool = True
    kind: str = "service"  # "temporal", "cloud", "worker", "api"


@dataclass(frozen=True)
class LocalCloud:
    """A local stand-in for a cloud, run as ``python -m <module>``; see localclouds/."""

    key: str  # its key in local.json
    module: str
    port_setting: str
    extra: tuple[tuple[str, str], ...] = ()  # (flag, LocalSettings attribute or "aws_endpoint")
    #: keyword arguments of describe()/worker_env() beyond the main port: (name, LocalSettings attr)
    describe_ports: tuple[tuple[str, str], ...] = ()

    def port(self, settings: Settings) -> int:
        return getattr(settings.local, self.port_setting)

    def _package(self) -> Any:
        return importlib.import_module(self.module)

    def _kwargs(self, settings: Settings) -> dict[str, int]:
        return {name: getattr(settings.local, attr) for name, attr in self.describe_ports}

    def describe(self, settings: Settings) -> dict[str, Any]:
        return self._package().describe(settings.state_dir.resolve(), HOST, self.port(settings), **self._kwargs(settings))

    def worker_env(self, settings: Settings) -> dict[str, str]:
        return self._package().worker_env(settings.state_dir.resolve(), HOST, self.port(settings), **self._kwargs(settings))

    def argv(self, settings: Settings) -> list[str]:
        argv = [
            sys.executable, "-m", self.module,
            "--host", HOST, "--port", str(self.port(settings)),
            "--state-dir", str(settings.state_dir.resolve()),
        ]
        for flag, source in self.extra:
            argv += [flag, _extra_value(settings, source)]
        return argv


def _extra_value(settings: Settings, source: str) -> str:
    if source == "aws_endpoint":
        return f"http://{HOST}:{settings.local.aws_port}"
    if source == "create_account_delay":
        return str(settings.local.create_account_delay.total_seconds())
    return str(getattr(settings.local, source))


LOCAL_CLOUDS: tuple[LocalCloud, ...] = (
    LocalCloud("aws", "localclouds.aws", "aws_port", (("--create-account-delay", "create_account_delay"),)),
    LocalCloud("gcp", "localclouds.gcp", "gcp_port"),
    LocalCloud(
        "azure", "localclouds.azure", "azure_imds_port",
        (("--arm-port", "azure_arm_port"),), describe_ports=(("arm_port", "azure_arm_port"),),
    ),
    LocalCloud("ec2", "localclouds.ec2", "ec2_imds_port", (("--aws-endpoint", "aws_endpoint"),)),
    LocalCloud(
        "vcenter", "localclouds.vcsim", "vcenter_port",
        (("--guest-port", "vcenter_guest_port"),), describe_ports=(("guest_port", "vcenter_guest_port"),),
    ),
    # The simulated fleet (VMs + SSM agents); reads the others from local.json when it boots VMs.
    LocalCloud("fleet", "localclouds.fleet", "fleet_port", (("--boot-concurrency", "fleet_boot_concurrency"),)),
)


def available_clouds() -> list[LocalCloud]:
    """The local clouds whose packages are installed (each one lands with its issue)."""
    found = []
    for cloud in LOCAL_CLOUDS:
        try:
            package = importlib.import_module(cloud.module)
        except ModuleNotFoundError:
            continue
        if hasattr(package, "describe") and hasattr(package, "worker_env"):
            found.append(cloud)
    return found


def temporal_spec(settings: Settings) -> ServiceSpec:
    state = settings.state_dir.resolve()
    argv = [
        str(temporal_cli()), "server", "start-dev",
        "--db-filename", str(state / "temporal.db"),
        "--ip", HOST,
        "--port", str(settings.local.temporal_port),
        "--ui-port", str(settings.local.temporal_ui_port),
        "--namespace", "default",
        "--log-level", "warn",
        # The UI decodes payloads through the API's codec server (clients/api/routes/codec.py).
        "--ui-codec-endpoint", f"{api_url(settings)}/codec",
        *search_attributes.dev_server_flags(),
    ]
    for pragma in settings.local.temporal_sqlite_pragmas:
        argv += ["--sqlite-pragma", pragma]
    for key, value in settings.local.temporal_dynamic_config.items():
        argv += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    return ServiceSpec(
        name="temporal",
        argv=argv,
        health_url=f"http://{HOST}:{settings.local.temporal_ui_port}/",
        kind="temporal",
    )


def temporal_address(settings: Settings) -> str:
    return f"{HOST}:{settings.local.temporal_port}"


def secret(settings: Settings, name: str) -> tuple[Path, str]:
    """A local secret, generated once and kept (mode 0600) under ``{state}/secrets/``."""
    import secrets as _secrets

    directory = settings.state_dir.resolve() / "secrets"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(_secrets.token_urlsafe(32))
    return path, path.read_text().strip()


def api_url(settings: Settings) -> str:
    return f"http://{settings.api.host}:{settings.api.port}"


def shared_env(settings: Settings, clouds: list[LocalCloud]) -> dict[str, str]:
    """Environment every fleetpatch process of the embedded default gets."""
    env = {
        "TEMPORAL_ADDRESS": temporal_address(settings),
        "TEMPORAL_NAMESPACE": "default",
        "FLEETPATCH_STATE_DIR": str(settings.state_dir.resolve()),
        "FLEETPATCH_API__ADMIN_TOKEN": secret(settings, "admin-token")[1],
        "FLEETPATCH_API__CHALLENGE_KEY": secret(settings, "challenge-key")[1],
        "FLEETPATCH_SEALING_KEY": secret(settings, "sealing-key")[1],
        "FLEETPATCH_CODEC__KEYS": secret(settings, "codec-key")[1],
        "FLEETPATCH_CODEC__UI_ORIGINS": json.dumps([f"http://{HOST}:{settings.local.temporal_ui_port}"]),
        "FLEETPATCH_GCP__AUDIENCE": f"{api_url(settings)}/v1/registrations",
        "FLEETPATCH_DATABASE__URL": settings.database_url,
        "FLEETPATCH_API__TEMPORAL_UI_URL": f"http://{HOST}:{settings.local.temporal_ui_port}",
        # Every simulated VM calls from this one loopback address: its budget is the fleet's.
        "FLEETPATCH_API__RATE_PER_ADDRESS": "6000",
    }
    for cloud in clouds:
        env.update(cloud.worker_env(settings))
    return env


def cloud_specs(settings: Settings, clouds: list[LocalCloud]) -> list[ServiceSpec]:
    specs = []
    for cloud in clouds:
        described = cloud.describe(settings)
        health = described.get("health_url") or f"http://{HOST}:{cloud.port(settings)}/__fleetpatch/health"
        specs.append(ServiceSpec(name=cloud.key, argv=cloud.argv(settings), health_url=health, kind="cloud"))
    return specs


def worker_metrics_port(settings: Settings, role: WorkerRole) -> int:
    """The port of a worker's Prometheus endpoint: an override, else its place in the block."""
    overrides = settings.local.worker_metrics_ports
    if role.value in overrides:
        return overrides[role.value]
    return settings.local.worker_metrics_port + list(WorkerRole).index(role)


def metrics_urls(settings: Settings) -> dict[str, str]:
    """{process: Prometheus URL} of every worker and the API, as local.json lists them."""
    urls = {f"worker-{role.value}": f"http://{HOST}:{worker_metrics_port(settings, role)}/metrics" for role in WorkerRole}
    urls["api"] = f"{api_url(settings)}/metrics"
    return urls


#: glibc's malloc arenas per worker process (its default: 8 per core), unless the environment sets
#: it: a worker's activity threads each grow an arena of their own, and fewer arenas keep its peak
#: RSS lower (p3 at 2,000 instances: aws worker 356 -> 306 MB; docs/BENCHMARKS.md).
WORKER_MALLOC_ARENAS = "2"


def worker_specs(settings: Settings, env: dict[str, str]) -> list[ServiceSpec]:
    arenas = {"MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", WORKER_MALLOC_ARENAS)}
    return [
        ServiceSpec(
            name=f"worker-{role.value}",
            argv=[sys.executable, "-m", "workers", "--role", role.value],
            env={**arenas, **env, "FLEETPATCH_TELEMETRY__METRICS_BIND": f"{HOST}:{worker_metrics_port(settings, role)}"},
            kind="worker",
        )
        for role in WorkerRole
    ]


def api_spec(settings: Settings, env: dict[str, str]) -> ServiceSpec:
    return ServiceSpec(
        name="api",
        argv=[sys.executable, "-m", "clients.api"],
        env=env,
        health_url=f"http://{settings.api.host}:{settings.api.port}/healthz",
        kind="api",
    )


def local_json(settings: Settings, clouds: list[LocalCloud], pids: dict[str, int]) -> dict[str, Any]:
    """The contract other tools read from ``.fleetpatch/local.json``."""
    doc: dict[str, Any] = {
        "api": api_url(settings),
        "admin_token_file": str(secret(settings, "admin-token")[0]),
        "codec_keys_file": str(secret(settings, "codec-key")[0]),
        "temporal": temporal_address(settings),
        "temporal_ui": f"http://{HOST}:{settings.local.temporal_ui_port}",
        "state_dir": str(settings.state_dir.resolve()),
        "database": display_url(settings.database_url),
        "processes": pids,
        "metrics": metrics_urls(settings),
    }
    for cloud in clouds:
        described = cloud.describe(settings)
        if cloud.key == "aws":
            doc["aws"] = described["endpoint"]
            doc["aws_details"] = described
        else:
            doc[cloud.key] = described
    vms = settings.state_dir.resolve() / "fleet" / "vms.json"
    if vms.exists():
        try:
            doc["vms"] = json.loads(vms.read_text())
        except ValueError:
            doc["vms"] = []
    return doc

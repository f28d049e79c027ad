"""Every uvicorn-served local cloud has one shape: the shared health route, no docs, and the
shared options; addresses are written one way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from localclouds.addresses import HEALTH_BODY, HEALTH_PATH, base_url, health_url, url_host
from localclouds.serving import arguments


def _clock() -> datetime:
    return datetime.now(UTC)


def _gcp(state: Path) -> list[FastAPI]:
    from localclouds.gcp.app import create_app

    return [create_app(state)]


def _azure(state: Path) -> list[FastAPI]:
    from localclouds.azure.app import create_arm_app, create_imds_app
    from localclouds.azure.layout import AzurePaths
    from localclouds.azure.material import ensure_material
    from localclouds.azure.vms import VmStore

    paths = AzurePaths.under(state)
    material = ensure_material(paths, locations=())
    store = VmStore(paths.vms)
    return [create_imds_app(material, store, _clock), create_arm_app(material, store, _clock)]


def _ec2(state: Path) -> list[FastAPI]:
    from localclouds.ec2.app import create_app
    from localclouds.ec2.instances import MotoInstances
    from localclouds.ec2.layout import Ec2Paths
    from localclouds.ec2.signing import RegionSigners

    instances = MotoInstances("http://127.0.0.1:9", clock=_clock)  # never called here
    return [create_app(instances, RegionSigners(Ec2Paths.under(state)), _clock)]


def _fleet(state: Path) -> list[FastAPI]:
    from localclouds.fleet.app import create_app
    from localclouds.fleet.host import FleetHost, HostSettings

    settings = HostSettings(fleet_url="http://127.0.0.1:9", local_json=state / "local.json")
    return [create_app(FleetHost(state, settings))]


@pytest.mark.parametrize("build", [_gcp, _azure, _ec2, _fleet], ids=lambda b: b.__name__[1:])
async def test_one_health_route_and_no_docs(
    build: Callable[[Path], list[FastAPI]], tmp_path: Path
) -> None:
    for app in build(tmp_path):
        assert app.openapi_url is None and app.docs_url is None and app.redoc_url is None
        # ASGITransport runs no lifespan: the fleet's agents stay unstarted.
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://local") as client:
            answer = await client.get(HEALTH_PATH)
            assert answer.status_code == 200
            assert answer.json() == HEALTH_BODY
            assert (await client.get("/__fleetpatch/elsewhere")).status_code != 200


def test_shared_options() -> None:
    parser = arguments("localclouds.example", None, port=8799)
    args = parser.parse_args([])
    assert (args.host, args.port, args.state_dir, args.log_level) == (
        "127.0.0.1", 8799, Path(".fleetpatch"), "warning"
    )
    args = parser.parse_args(
        ["--host", "::1", "--port", "1", "--state-dir", "/x", "--log-level", "info"]
    )
    assert (args.host, args.port, args.state_dir, args.log_level) == ("::1", 1, Path("/x"), "info")
    quiet = arguments("localclouds.example", None, port=1, log_level=False)
    with pytest.raises(SystemExit):
        quiet.parse_args(["--log-level", "info"])


def test_addresses() -> None:
    assert url_host("127.0.0.1") == "127.0.0.1"
    assert url_host("::1") == "[::1]"
    assert url_host("[::1]") == "[::1]"
    assert base_url("::1", 8702) == "http://[::1]:8702"
    assert base_url("localhost", 8704, "https") == "https://localhost:8704"
    assert health_url("127.0.0.1", 8705) == "http://127.0.0.1:8705/__fleetpatch/health"

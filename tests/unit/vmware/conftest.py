"""Fixtures for the vmware tests: signing keys, and a real vcsim per test (it starts in ~20 ms)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from clouds.vmware.token import generate_signing_key
from clouds.vmware.vsphere import VcenterEndpoint, VsphereClient
from localclouds.vcsim import PASSWORD, USERNAME
from localclouds.vcsim.build import VcsimUnavailable, ensure_built
from localclouds.vcsim.process import VcsimProcess, start_vcsim


@pytest.fixture(scope="session")
def ed_keys() -> tuple[str, str]:
    return generate_signing_key("EdDSA")


@pytest.fixture(scope="session")
def es_keys() -> tuple[str, str]:
    return generate_signing_key("ES256")


@pytest.fixture(scope="session")
def vcsim_binary() -> Path:
    """The vcsim binary, built by scripts/build-vcsim.sh (cached; ~30 s the very first time)."""
    try:
        return ensure_built()
    except VcsimUnavailable as err:
        pytest.skip(f"vcsim cannot be built here (Go or govmomi missing): {err}")


@pytest.fixture
def vcsim(vcsim_binary: Path, tmp_path: Path) -> Iterator[VcsimProcess]:
    """A fresh vcsim (VPX model) on a free loopback port."""
    process = start_vcsim(vcsim_binary, log_path=tmp_path / "vcsim.log")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def endpoint(vcsim: VcsimProcess) -> VcenterEndpoint:
    return VcenterEndpoint(url=vcsim.url, username=USERNAME, password=PASSWORD)


@pytest.fixture
def client(endpoint: VcenterEndpoint) -> Iterator[VsphereClient]:
    with VsphereClient(endpoint) as session:
        yield session


@pytest.fixture
def links_add(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ed_keys: tuple[str, str]) -> Callable[..., tuple[Result, list[dict[str, Any]]]]:
    """``fleetpatch links add --customer acme --public-key KEY ARGS...`` with the API call caught:
    the CLI's result and the bodies it sent."""
    from clients.cli import links_cmd

    sent: list[dict[str, Any]] = []

    def call(_settings: Any, method: str, path: str, json: dict[str, Any]) -> dict[str, Any]:
        sent.append(json)
        return {**json, "default_patch_group": "on-time", "time_zone": "UTC"}

    monkeypatch.setattr(links_cmd, "call", call)
    key = tmp_path / "vc.pub.pem"
    key.write_text(ed_keys[1])

    def add(*args: str) -> tuple[Result, list[dict[str, Any]]]:
        result = CliRunner().invoke(links_cmd.app, ["add", "--customer", "acme", "--public-key", str(key), *args])
        return result, sent

    return add

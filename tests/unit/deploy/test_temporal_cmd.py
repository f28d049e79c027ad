"""``fleetpatch temporal``: the one list of search attributes, printed or applied, and the namespace."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from contracts import search_attributes

FLEETPATCH = str(Path(sys.executable).parent / "fleetpatch")


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "FLEETPATCH_"))}
    return subprocess.run([FLEETPATCH, "temporal", *args], env={**clean, **env}, capture_output=True, text=True,
                          timeout=120)


def test_search_attributes_prints_the_contract_list() -> None:
    printed = _run("search-attributes")
    assert printed.returncode == 0, printed.stderr
    rows = [line.split("\t") for line in printed.stdout.splitlines()]
    assert {name: kind for name, kind in rows} == {k.name: "Keyword" for k in search_attributes.ALL}
    assert search_attributes.dev_server_flags()[:2] == ["--search-attribute", f"{rows[0][0]}=Keyword"]


def test_bad_retention_is_refused_naming_the_option() -> None:
    refused = _run("namespace", "--retention", "soon")
    assert refused.returncode == 2 and "--retention" in refused.stderr


async def test_apply_creates_the_namespace_and_registers_the_attributes(dev_env: WorkflowEnvironment) -> None:
    address = dev_env.client.service_client.config.target_host
    namespace = f"fp-{uuid.uuid4().hex[:8]}"
    env = {"TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": namespace}
    first = _run("namespace", "--apply", "--retention", "3d", **env)
    assert first.returncode == 0 and f"namespace {namespace}: created" in first.stdout, first.stderr
    again = _run("namespace", "--apply", **env)
    assert again.returncode == 0 and "exists" in again.stdout, again.stderr

    applied = _run("search-attributes", "--apply", **env)
    assert applied.returncode == 0, applied.stderr
    assert f"{len(search_attributes.ALL)} added" in applied.stdout
    assert "0 added" in _run("search-attributes", "--apply", **env).stdout
    listed = await dev_env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    assert {k.name for k in search_attributes.ALL} <= set(listed.custom_attributes)


def test_unreachable_temporal_is_a_clear_error() -> None:
    failed = _run("search-attributes", "--apply")  # no address configured, no local.json
    assert failed.returncode == 2 and "TEMPORAL_ADDRESS" in failed.stderr

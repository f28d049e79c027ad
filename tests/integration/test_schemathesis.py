"""schemathesis over the whole OpenAPI document, against the local default stack with the admin
token: every phase, every check, a maximum response time, bounded in time. It must find nothing.

The seed is printed (and can be set with ``FLEETPATCH_SCHEMATHESIS_SEED``) so a failure replays.
``make schemathesis`` runs this test alone.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment

import scheduling
from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from contracts.enrollment import AccountRef
from contracts.patching import EnsureWindowsInput
from tests.conftest import free_port
from tests.integration.stack import Stack, start_stack

pytestmark = pytest.mark.integration

#: Wall-clock bound of the whole schemathesis run (all phases), and of each phase's search.
MAX_SECONDS = int(os.environ.get("FLEETPATCH_SCHEMATHESIS_MAX_SECONDS", "150"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = int(os.environ.get("FLEETPATCH_SCHEMATHESIS_MAX_EXAMPLES", "25"))


@pytest.fixture(scope="module")
async def stack(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as exits:
        prefix = f"s{uuid.uuid4().hex[:8]}-"
        yield await start_stack(exits, dev_env.client, tmp_path_factory.mktemp("state"), prefix)


async def _seed_data(stack: Stack) -> None:
    """Something for the read routes and the stateful phase to find: a link and a systems
    account's three (paused) patch windows."""
    linked = await stack.link(provider="gcp", cloud_account="acme-schema-1", customer="acme")
    assert linked.status_code == 201, linked.text
    await scheduling.ensure_window_schedules(
        stack.client,
        EnsureWindowsInput(account=AccountRef(account_id="123456789012", role_arn="arn:aws:iam::123456789012:role/OrganizationAccountAccessRole"), customer="acme",
                           provider="gcp", cloud_account="acme-schema-1", time_zone="UTC",
                           queue_prefix=stack.settings.task_queue_prefix),
    )
    for group in ("early", "on-time", "late"):
        await scheduling.pause(stack.client, "123456789012", group, "schemathesis")


async def _serve(stack: Stack, exits: AsyncExitStack) -> str:
    """The stack's API over real HTTP (schemathesis speaks HTTP), on a free loopback port."""
    port = free_port()
    app = create_app(stack.settings, TemporalGateway.for_client(stack.client))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())

    async def stop() -> None:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)

    exits.push_async_callback(stop)
    for _ in range(100):
        if server.started:
            return f"http://127.0.0.1:{port}"
        await asyncio.sleep(0.1)
    raise AssertionError("the API did not start")


def _command(base: str, token: str, seed: int, report: Path) -> list[str]:
    return [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG), "--no-color",
        "run", f"{base}/openapi.json",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--checks", "all",
        "--max-response-time", "10",
        "--max-time", str(MAX_SECONDS),
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(seed),
        "--workers", "2",
        "--request-timeout", "30",
        "--header", f"Authorization: Bearer {token}",
        "--report", "junit", "--report-dir", str(report),
        "--output-sanitize", "true",
    ]


async def test_schemathesis_finds_nothing(stack: Stack, tmp_path: Path) -> None:
    await _seed_data(stack)
    seed = int(os.environ.get("FLEETPATCH_SCHEMATHESIS_SEED") or random.randrange(2**31))
    token = stack.admin_headers["Authorization"].removeprefix("Bearer ")
    async with AsyncExitStack() as exits:
        base = await _serve(stack, exits)
        print(f"schemathesis seed: {seed} (replay with FLEETPATCH_SCHEMATHESIS_SEED={seed})", flush=True)
        process = await asyncio.create_subprocess_exec(
            *_command(base, token, seed, tmp_path / "report"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), timeout=MAX_SECONDS * 2 + 60)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"schemathesis ran past its bound (seed {seed})") from None
    text = out.decode(errors="replace")
    print(text)
    assert process.returncode == 0, f"schemathesis found problems (seed {seed}):\n{text[-6000:]}"
    assert "schema validation mismatch" not in text.lower(), f"seed {seed}:\n{text[-4000:]}"
    assert token not in text

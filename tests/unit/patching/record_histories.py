"""Regenerate the checked-in histories replayed by ``test_replay.py``:
``python -m tests.unit.patching.record_histories`` (only after an intended, versioned change)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from clients.local.tools import temporal_test_server
from config.temporal import register_search_attributes
from contracts.patch_config import window_config
from contracts.patching import PatchRef, ReleaseRequest, WindowOutcome
from contracts.providers import PatchGroup
from tests.unit.patching.fake_ssm import FakeSsm
from tests.unit.patching.harness import account, start, window_input, workers
from workflows.patch_window import PatchWindowWorkflow

HERE = Path(__file__).parent / "histories"


async def _save(env: WorkflowEnvironment, handle, name: str, out: Path) -> None:
    history = await handle.fetch_history()
    _write(out / f"{name}.json", handle.id, history.to_json())
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            execution = event.child_workflow_execution_started_event_attributes.workflow_execution
            child = await env.client.get_workflow_handle(execution.workflow_id, run_id=execution.run_id).fetch_history()
            _write(out / f"{name}.batch.json", execution.workflow_id, child.to_json())
            return


def _write(path: Path, workflow_id: str, history_json: str) -> None:
    path.write_text(json.dumps({"workflow_id": workflow_id, "history": json.loads(history_json)}, separators=(",", ":")))


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(temporal_test_server()))
    await register_search_attributes(env.client)
    try:
        await record(env, HERE)
    finally:
        await env.shutdown()


async def record(env: WorkflowEnvironment, out: Path, prefix: str = "t0123456789-") -> None:
    """A cut-off early window and a held-then-released on-time window (each with one batch)."""
    fake = FakeSsm(catalogue={"ubuntu": [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")]}, run_polls=4)
    fake.add("ubuntu", PatchGroup.EARLY, 30, fails=1)
    fake.add("ubuntu", PatchGroup.ON_TIME, 4)
    acct = account(prefix)
    cutoff = window_config(PatchGroup.EARLY, overrides={"max_concurrency": "10", "max_errors": "5",
                                                        "duration_minutes": 60, "cutoff_minutes": 30})
    async with workers(env.client, prefix, fake):
        early = await start(env.client, window_input(prefix, PatchGroup.EARLY, acct, cutoff, poll_interval_seconds=300))
        await early.result()
        await _save(env, early, "early_cut_off", out)
        held = await start(env.client, window_input(prefix, PatchGroup.ON_TIME, acct))
        with env.auto_time_skipping_disabled():
            for _ in range(100):
                if (await held.query(PatchWindowWorkflow.status)).outcome is WindowOutcome.HELD:
                    break
                await asyncio.sleep(0.1)
            await held.signal("release", ReleaseRequest(by="recorder"))
        await held.result()
        await _save(env, held, "on_time_held_then_released", out)
    await record_customer_rings(env, out, prefix)


async def record_customer_rings(env: WorkflowEnvironment, out: Path, prefix: str = "t0123456789-") -> None:
    """A customer-wide ring: early in one systems account (marked running while it runs), then
    on-time in another account of the customer, which copies the customer train into its bucket
    and installs it; an Ubuntu-less RHEL OS follows its baseline and Debian is held."""
    fake = FakeSsm(catalogue={"ubuntu": [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")],
                              "rhel": [PatchRef("kernel.x86_64", "kernel.x86_64:0:4.18.0-513.9.1.el8_9")]}, run_polls=1)
    gcp = account("c" + prefix[1:])
    azure = replace(gcp, account_id=str((int(gcp.account_id) + 1) % 10**12).zfill(12))
    fake.customers["acme"] = [(gcp, "gcp/acme-prod"), (azure, "azure/sub-1")]
    fake.add("ubuntu", PatchGroup.EARLY, 2, account=gcp.account_id)
    for os in ("ubuntu", "rhel", "debian"):
        fake.add(os, PatchGroup.ON_TIME, 1, account=azure.account_id)
    async with workers(env.client, prefix, fake):
        early = await start(env.client, window_input(prefix, PatchGroup.EARLY, gcp))
        await early.result()
        await _save(env, early, "customer_early", out)
        on_time = await start(env.client, window_input(prefix, PatchGroup.ON_TIME, azure))
        await on_time.result()
        await _save(env, on_time, "customer_on_time", out)


if __name__ == "__main__":
    asyncio.run(main())

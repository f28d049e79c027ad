"""Record the histories of the estate data path that ``tests/unit/histories`` replays:
``python -m tests.unit.compliance.record_history`` (only after an intended, versioned change).

- ComplianceSync: seven accounts with stub aws-worker activities (one refuses), at most two at a
  time: the fan-out, a failed account and the aggregates.
- PatchWindow: an early window over the fake fleet that ends by recording its results in the
  estate store (the ``record-window-results-in-estate`` step)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from clients.local.tools import temporal_test_server
from config.temporal import register_search_attributes
from contracts import taskqueues
from contracts.compliance import ComplianceSyncInput, ComplianceSyncResult, manual_workflow_id
from contracts.names import WorkflowName
from contracts.patching import PatchRef
from contracts.providers import PatchGroup, WorkerRole
from tests.unit.compliance.test_workflow import StubAws
from tests.unit.patching import harness
from tests.unit.patching.fake_ssm import FakeSsm
from workflows.compliance import ComplianceSyncWorkflow

RECORDED = Path(__file__).parents[1] / "histories" / "recorded"
OUT = RECORDED / "compliance_sync.ComplianceSync.json"
WINDOW_OUT = RECORDED / "estate_window.PatchWindow.json"
PREFIX = "h0123456789-"


def _save(path: Path, workflow_id: str, history_json: str) -> None:
    path.write_text(json.dumps({"workflow_id": workflow_id, "history": json.loads(history_json)}, separators=(",", ":")))
    print(path.name)


async def _window(env: WorkflowEnvironment) -> None:
    fake = FakeSsm(catalogue={"ubuntu": [PatchRef("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15")]})
    fake.add("ubuntu", PatchGroup.EARLY, 3)
    async with harness.workers(env.client, PREFIX, fake):
        handle = await harness.start(env.client, harness.window_input(PREFIX, PatchGroup.EARLY, harness.account(PREFIX)))
        await handle.result()
        _save(WINDOW_OUT, handle.id, (await handle.fetch_history()).to_json())


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(temporal_test_server()))
    await register_search_attributes(env.client)
    try:
        stub = StubAws()
        stub.gate.set()
        async with Worker(env.client, task_queue=taskqueues.for_role(WorkerRole.AWS, PREFIX),
                          activities=[stub.list_accounts, stub.sync, stub.aggregates]), \
                Worker(env.client, task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, PREFIX),
                       workflows=[ComplianceSyncWorkflow]):
            handle = await env.client.start_workflow(
                WorkflowName.COMPLIANCE_SYNC, ComplianceSyncInput(queue_prefix=PREFIX, max_concurrent_accounts=2),
                id=manual_workflow_id("recorded"), task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, PREFIX),
                result_type=ComplianceSyncResult)
            await handle.result()
            _save(OUT, handle.id, (await handle.fetch_history()).to_json())
        await _window(env)
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())

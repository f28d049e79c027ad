"""Record the ComplianceSync history that ``tests/unit/histories`` replays:
``python -m tests.unit.compliance.record_history`` (only after an intended, versioned change).

Seven accounts with stub aws-worker activities (one refuses), at most two at a time: the
history holds the fan-out, a failed account and the aggregates."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from clients.local.tools import temporal_test_server
from contracts import taskqueues
from contracts.compliance import ComplianceSyncInput, ComplianceSyncResult, manual_workflow_id
from contracts.names import WorkflowName
from contracts.providers import WorkerRole
from tests.unit.compliance.test_workflow import StubAws
from workflows.compliance import ComplianceSyncWorkflow

OUT = Path(__file__).parents[1] / "histories" / "recorded" / "compliance_sync.ComplianceSync.json"
PREFIX = "h0123456789-"


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(temporal_test_server()))
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
            history = await handle.fetch_history()
        OUT.write_text(json.dumps({"workflow_id": handle.id, "history": json.loads(history.to_json())},
                                  separators=(",", ":")))
        print(OUT.name)
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())

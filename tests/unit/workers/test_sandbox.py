"""The helper modules the workers pass through the workflow sandbox are safe to share between
runs, and a run really uses the one shared copy."""

from __future__ import annotations

import ast
import importlib
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.unit.workers.sandbox_probe import SandboxProbe
from workers.sandbox import SHARED_WORKFLOW_MODULES, workflow_runner

REPO = Path(__file__).resolve().parents[3]
_MUTABLE = (list, dict, set, bytearray)


@pytest.mark.parametrize("name", SHARED_WORKFLOW_MODULES)
def test_a_shared_module_defines_no_workflow_and_no_mutable_state(name: str) -> None:
    module = importlib.import_module(name)
    for value in vars(module).values():
        defined_here = getattr(value, "__module__", None) == name
        assert not (defined_here and hasattr(value, "__temporal_workflow_definition")), f"{name} defines {value!r}"
    source = ast.parse((REPO / (name.replace(".", "/") + ".py")).read_text())
    assigned = {
        target.id
        for node in source.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    mutable = sorted(n for n in assigned if isinstance(getattr(module, n, None), _MUTABLE))
    assert mutable == [], f"{name} holds module-level state a run could change for every run: {mutable}"
    assert not any(isinstance(node, ast.Global) for node in ast.walk(source)), f"{name} rebinds a global"


async def test_a_run_uses_the_one_imported_copy_of_each_shared_module(time_skipping_env: WorkflowEnvironment) -> None:
    host = {name: id(importlib.import_module(name)) for name in SHARED_WORKFLOW_MODULES}
    queue = f"sandbox-{uuid.uuid4()}"
    client = time_skipping_env.client
    async with Worker(client, task_queue=queue, workflows=[SandboxProbe], workflow_runner=workflow_runner()):
        shared = await client.execute_workflow(SandboxProbe.run, host, id=queue, task_queue=queue)
    assert shared == dict.fromkeys(SHARED_WORKFLOW_MODULES, True)
    # The SDK's own sandbox gives each run copies of its own (but for the modules another one
    # imports inside ``imports_passed_through()``): the same probe tells them apart.
    async with Worker(client, task_queue=queue + "-sdk", workflows=[SandboxProbe]):
        own = await client.execute_workflow(SandboxProbe.run, host, id=queue + "-sdk", task_queue=queue + "-sdk")
    assert own["workflows.options"] is False and own["workflows.calls"] is False and not all(own.values())

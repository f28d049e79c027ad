"""The workflows speak one way: names from contracts/names.py, typed messages, and every activity
or child call through workflows/calls.py with a preset of workflows/options.py."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from temporalio import workflow

from contracts.models import ActivityName
from contracts.names import QueryName, SignalName, UpdateName, WorkflowName
from workflows.registry import ALL_WORKFLOWS

WORKFLOWS = Path(__file__).resolve().parents[3] / "workflows"

#: Only these modules may call the SDK's activity/child entry points or write timeouts and retries.
CALLS = "calls.py"
OPTIONS = "options.py"
SDK_CALLS = {"execute_activity", "start_activity", "execute_local_activity", "start_local_activity",
             "execute_child_workflow", "start_child_workflow"}
OPTION_WORDS = {"RetryPolicy", "start_to_close_timeout", "schedule_to_close_timeout", "schedule_to_start_timeout",
                "heartbeat_timeout", "retry_policy", "execution_timeout"}


def _values(names: type) -> set[str]:
    return {v for k, v in vars(names).items() if k.isupper()}


def _definitions() -> list:
    return [workflow._Definition.from_class(cls) for cls in ALL_WORKFLOWS]


def test_workflow_and_handler_names_come_from_the_registry() -> None:
    definitions = _definitions()
    assert {d.name for d in definitions} == _values(WorkflowName)
    assert {n for d in definitions for n in d.queries} <= _values(QueryName)
    assert {n for d in definitions for n in d.updates} <= _values(UpdateName)
    assert {n for d in definitions for n in d.signals} == _values(SignalName)


@pytest.mark.parametrize("cls", ALL_WORKFLOWS, ids=[c.__name__ for c in ALL_WORKFLOWS])
def test_queries_and_updates_answer_dataclasses(cls: type) -> None:
    definition = workflow._Definition.from_class(cls)
    for handler in [*definition.queries.values(), *definition.updates.values()]:
        assert dataclasses.is_dataclass(handler.ret_type), f"{cls.__name__}.{handler.name} returns {handler.ret_type}"


def test_activity_names_are_unique() -> None:
    values = [v for k, v in vars(ActivityName).items() if k.isupper()]
    assert len(values) == len(set(values))


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in SDK_CALLS and path.name != CALLS:
            found.append(f"{path.name}:{node.lineno} calls {node.attr}")
        words = {node.id} if isinstance(node, ast.Name) else {node.arg} if isinstance(node, ast.keyword) else set()
        if words & OPTION_WORDS and path.name != OPTIONS:
            found.append(f"{path.name}:{node.lineno} writes {words & OPTION_WORDS}")
    return found


def test_one_way_to_call_and_presets_in_one_module() -> None:
    modules = sorted(WORKFLOWS.glob("*.py"))
    assert [p for p in modules if p.name in (CALLS, OPTIONS)]
    assert [hit for path in modules for hit in _offences(path)] == []


def test_the_check_sees_an_inline_call(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("async def f():\n    await workflow.execute_activity('x', start_to_close_timeout=timedelta(seconds=1))\n")
    assert _offences(sneaky) == ["sneaky.py:2 calls execute_activity", "sneaky.py:2 writes {'start_to_close_timeout'}"]

"""The clients layer's shape: API functions fit on one screen, Temporal names come from
contracts.names, and activities never reach up into clients/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TEMPORAL_NAMES = {"EnrollVm", "LinkAdmin", "PatchWindow", "AllowReenrollment", "Doctor", "register", "status", "release"}


def _functions(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse(path.read_text())
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_no_api_function_over_sixty_lines() -> None:
    modules = sorted((ROOT / "clients" / "api").rglob("*.py"))
    assert any(p.name == "registration.py" for p in modules)
    long = [f"{p.relative_to(ROOT)}:{f.name}" for p in modules for f in _functions(p)
            if f.end_lineno is not None and f.end_lineno - f.lineno + 1 > 60]
    assert long == []


def _temporal_calls(path: Path) -> list[str]:
    """String literals passed as the first argument of Temporal client calls that take a name."""
    calls = {"execute_workflow", "start_workflow", "start_update_with_start_workflow", "query", "signal",
             "execute_update", "start_update", "WithStartWorkflowOperation", "ScheduleActionStartWorkflow"}
    hits = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        first = node.args[0]
        if name in calls and isinstance(first, ast.Constant) and isinstance(first.value, str):
            hits.append(f"{path.relative_to(ROOT)}:{node.lineno} {first.value}")
        if isinstance(first, ast.Constant) and first.value in TEMPORAL_NAMES and name in calls:
            hits.append(f"{path.relative_to(ROOT)}:{node.lineno} {first.value}")
    return hits


def test_clients_name_workflows_updates_queries_and_signals_through_contracts() -> None:
    modules = sorted((ROOT / "clients").rglob("*.py")) + sorted((ROOT / "scheduling").rglob("*.py"))
    assert [hit for path in modules for hit in _temporal_calls(path)] == []


def test_activities_and_scheduling_never_import_clients() -> None:
    offenders = []
    for path in sorted((ROOT / "activities").rglob("*.py")) + sorted((ROOT / "scheduling").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n == "clients" or n.startswith("clients.")]
    assert offenders == []

"""Structured log fields never collide with LogRecord's own attributes (that raises at run time,
and only when the level is enabled: tests at WARNING would never see it)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _extra_keys() -> list[tuple[str, int, str]]:
    found = []
    for folder in ("activities", "workflows", "workers", "clients", "clouds", "localclouds", "config"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.keyword) and node.arg == "extra" and isinstance(node.value, ast.Dict):
                    for key in node.value.keys:
                        if isinstance(key, ast.Constant) and isinstance(key.value, str):
                            found.append((str(path.relative_to(ROOT)), node.value.lineno, key.value))
    return found


def test_extra_keys_are_not_logrecord_attributes() -> None:
    keys = _extra_keys()
    assert keys, "the scan found no structured log fields at all"
    clashes = [k for k in keys if k[2] in RESERVED]
    assert clashes == []

"""A workflow that imports each module named and tells whether its run got the given host copy
(a module of its own: the sandbox imports a workflow's module again for every run)."""

from __future__ import annotations

import sys

from temporalio import workflow


@workflow.defn(name="SandboxSharedModules")
class SandboxProbe:
    @workflow.run
    async def run(self, modules: dict[str, int]) -> dict[str, bool]:
        seen = {}
        for name, host in modules.items():
            imported = __import__(name, fromlist=["_"])  # the sandbox's own import, as a workflow's
            seen[name] = id(imported) == host and sys.modules[name] is imported
        return seen

"""What the later rings of a customer could not patch: the OSes their newest runs only scanned
because no early instance of that OS exists anywhere in the customer's estate (Ubuntu and
Debian, whose baselines cannot delay approval). Read from Temporal visibility: every PatchWindow
run keeps ``held_os`` in its memo's summary."""

from __future__ import annotations

from temporalio.client import Client

from contracts import search_attributes as sa
from contracts.names import WorkflowName
from contracts.patching import HELD_NO_EARLY
from scheduling.views import _quote as quote

#: Runs read per customer (the newest first; one per account and ring counts).
MAX_RUNS_READ = 200


async def held_os(client: Client, customer: str) -> list[str]:
    """The OSes the newest later-ring run of any account of ``customer`` held (sorted)."""
    query = (f"WorkflowType = '{WorkflowName.PATCH_WINDOW}' AND {sa.CUSTOMER.name} = {quote(customer)} "
             f"AND {sa.PATCH_GROUP.name} != 'early' AND ExecutionStatus = 'Completed'")
    newest: dict[tuple[str | None, str | None], list[str]] = {}
    async for run in client.list_workflows(query, limit=MAX_RUNS_READ):
        attributes = run.typed_search_attributes
        key = (attributes.get(sa.SYSTEMS_ACCOUNT), attributes.get(sa.PATCH_GROUP))
        if key in newest:
            continue
        summary = (await run.memo()).get("summary") or {}
        newest[key] = [str(os) for os in summary.get("held_os") or []]
    return sorted({os for held in newest.values() for os in held})


def held_note(oses: list[str]) -> str | None:
    """``"debian, ubuntu: held: no early instance of this OS"``, or None."""
    return f"{', '.join(oses)}: {HELD_NO_EARLY}" if oses else None

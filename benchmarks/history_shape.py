"""What one workflow costs the Temporal server, read from its history: events and workflow tasks,
for an enrollment up to its activation (the update's answer) and for the trivial workflow whole.
These do not move with the machine's load, unlike the throughputs measured beside them."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, datetime

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

#: the event that answers the waiting registration (its activation)
ANSWERED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED


def shape(events: list, until: int | None = None) -> dict[str, int]:
    """Events and workflow tasks up to and including the first ``until`` event (else all), and
    the activities and local-activity markers among them."""
    counted: Counter[int] = Counter()
    total = 0
    for event in events:
        total += 1
        counted[event.event_type] += 1
        if until is not None and event.event_type == until:
            break
    return {
        "events": total,
        "workflow_tasks": counted[EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED],
        "activities": counted[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED],
        "markers": counted[EventType.EVENT_TYPE_MARKER_RECORDED],
        "children": counted[EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED],
        "search_attribute_upserts": counted[EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES],
    }


async def median_shape(client: Client, workflow_type: str, since: datetime, sample: int = 10,
                       until: int | None = None) -> dict[str, float]:
    """The median shape over up to ``sample`` runs of ``workflow_type`` started after ``since``."""
    query = f"WorkflowType='{workflow_type}' AND StartTime > '{since.astimezone(UTC).isoformat()}'"
    ids = [wf.id async for wf in client.list_workflows(query, limit=sample)]
    shapes = []
    for workflow_id in ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        shapes.append(shape(list(history.events), until))
    if not shapes:
        return {}
    return {key: statistics.median(s[key] for s in shapes) for key in shapes[0]} | {"runs": len(shapes)}

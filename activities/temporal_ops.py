"""Activities that talk to Temporal itself (orchestrator worker)."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from contracts.enrollment import AwaitWorkflowInput
from contracts.errors import ErrorType, FleetpatchError
from contracts.failures import business_failure
from contracts.models import ActivityName

_POLL_SECONDS = 2


class TemporalActivities:
    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name=ActivityName.AWAIT_WORKFLOW)
    async def await_workflow(self, inp: AwaitWorkflowInput) -> Any:
        """The result of the latest run of a shared workflow, waiting while it runs.

        Returned as plain JSON data: the calling workflow decodes it into its own type.
        """
        handle = self._client.get_workflow_handle(inp.workflow_id)
        try:
            # Poll the run's status (heartbeating) rather than long-poll its history: cheap, and
            # the heartbeat lets a cancelled or timed-out wait end promptly.
            while True:
                description = await handle.describe()
                if description.status != WorkflowExecutionStatus.RUNNING:
                    break
                activity.heartbeat(description.status.name)
                await asyncio.sleep(_POLL_SECONDS)
            return await handle.result()
        except WorkflowFailureError as err:
            found = business_failure(err)
            kind = found.type if found else ErrorType.ACCOUNT_VENDING_FAILED.value
            reason = found.message if found else str(err.cause or err)
            try:
                error_type = ErrorType(kind)
            except ValueError:
                error_type = ErrorType.ACCOUNT_VENDING_FAILED
            raise FleetpatchError(error_type, f"{inp.workflow_id} failed: {reason}") from err

"""Activities that talk to Temporal itself (orchestrator worker)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from contracts import ids
from contracts.enrollment import AwaitWorkflowInput, SsmConfigurationResult, SystemsAccount
from contracts.enrollment_setup import KnownSetup, KnownSetupInput
from contracts.errors import ErrorType, FleetpatchError
from contracts.failures import business_failure
from contracts.models import ActivityName

_POLL_SECONDS = 2

#: completed shared-workflow results this worker remembers (a completed run is never replaced)
_KNOWN_MAX = 4096


class TemporalActivities:
    def __init__(self, client: Client) -> None:
        self._client = client
        self._known: OrderedDict[str, Any] = OrderedDict()

    def all(self) -> list:
        return [self.await_workflow, self.read_known_setup]

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

    @activity.defn(name=ActivityName.READ_KNOWN_SETUP)
    async def read_known_setup(self, inp: KnownSetupInput) -> KnownSetup:
        """The systems account and its SSM configuration at the wanted version, where their
        shared workflows have completed (a local activity of EnrollVm: one marker in its history
        instead of two children started again and two awaits)."""
        account = await self._completed(ids.systems_account(inp.provider, inp.cloud_account), SystemsAccount)
        if account is None:
            return KnownSetup()
        configuration = await self._completed(
            ids.ssm_configuration(account.account_id, inp.configuration_version), SsmConfigurationResult
        )
        return KnownSetup(account=account, configuration=configuration)

    async def _completed(self, workflow_id: str, result_type: type) -> Any:
        """The result of the workflow's latest run if that run completed, else None. Completed runs
        are remembered: with the shared children's reuse policy (a failed run only is replaced)
        a completed result never changes."""
        if workflow_id in self._known:
            self._known.move_to_end(workflow_id)
            return self._known[workflow_id]
        try:
            description = await self._client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        if description.status != WorkflowExecutionStatus.COMPLETED:
            return None
        handle = self._client.get_workflow_handle(workflow_id, run_id=description.run_id, result_type=result_type)
        result = await handle.result(follow_runs=False)
        self._known[workflow_id] = result
        if len(self._known) > _KNOWN_MAX:
            self._known.popitem(last=False)
        return result

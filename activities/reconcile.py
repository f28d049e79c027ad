"""Reconcile activities (aws worker): list a systems account's managed instances and pending
activations for one cloud account, apply one reconcile action, and record a run's actions in the
estate store. Each is idempotent: an instance already deregistered or an activation already
deleted is a success; recording a run again rewrites the same rows."""

from __future__ import annotations

from botocore.exceptions import ClientError
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from clouds.aws.errors import error_code
from clouds.aws.sessions import AwsSessions
from clouds.aws.ssm_agents import SsmAgents
from config.settings import AwsSettings
from contracts.errors import ErrorType, FleetpatchError
from contracts.models import ActivityName
from contracts.reconcile import ActionKind, ApplyActionInput, ListManagedInput, ListManagedResult, RecordReconcileInput
from estate import reconcile_events
from estate.db import transaction

#: What SSM answers for an instance that is no longer there.
_GONE = ("InvalidInstanceId", "InvalidResourceId")


class ReconcileActivities:
    def __init__(self, settings: AwsSettings, sessions: AwsSessions | None = None,
                 store: sessionmaker[Session] | None = None) -> None:
        self._agents = SsmAgents(sessions or AwsSessions(settings))
        self._store = store  # the estate store (the aws worker's); None: nothing is recorded

    def all(self) -> list:
        return [self.list_managed_nodes, self.apply_reconcile_action, self.record_reconcile_actions]

    @activity.defn(name=ActivityName.RECORD_RECONCILE_ACTIONS)
    def record_reconcile_actions(self, inp: RecordReconcileInput) -> int:
        """A run's actions, with their evidence, into the estate store (one transaction)."""
        if self._store is None:
            raise FleetpatchError(ErrorType.CONFIGURATION_INVALID, "this worker has no estate store")
        with transaction(self._store) as session:
            return reconcile_events.record(session, inp)

    @activity.defn(name=ActivityName.LIST_MANAGED_NODES)
    def list_managed_nodes(self, inp: ListManagedInput) -> ListManagedResult:
        return ListManagedResult(
            nodes=self._agents.nodes_of(inp.account, inp.cloud_account),
            activations=self._agents.pending_activations(inp.account, inp.cloud_account),
        )

    @activity.defn(name=ActivityName.APPLY_RECONCILE_ACTION)
    def apply_reconcile_action(self, inp: ApplyActionInput) -> None:
        action = inp.action
        activity.logger.info(
            "reconcile action",
            extra={"kind": action.kind.value, "target": action.target, "instance_key": action.instance_key},
        )
        if action.kind is ActionKind.DELETE_ACTIVATION:
            self._agents.delete_activation(inp.account, action.target)
        elif action.kind is ActionKind.RETAG:
            self._agents.tag(inp.account, action.target, action.tags)
        elif action.kind is ActionKind.DEREGISTER:
            try:
                self._agents.deregister(inp.account, action.target)
            except ClientError as err:
                if error_code(err) not in _GONE:
                    raise
        else:
            raise FleetpatchError(ErrorType.CONFIGURATION_INVALID, f"the aws worker does not apply {action.kind.value}")

"""What reconcile did, in the estate store: every action of a run kept with its evidence
(idempotent per run), read back per instance in the caller's scope, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from contracts.providers import Provider
from contracts.reconcile import ActionKind, ReconcileAction, RecordReconcileInput
from estate import reconcile_events
from estate.db import transaction
from estate.results import InstanceRow, Scope

AT = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


def _run(run_id: str, *actions: ReconcileAction, at: datetime = AT, customer: str = "acme") -> RecordReconcileInput:
    return RecordReconcileInput(provider=Provider.GCP, cloud_account="acme-prod", customer=customer,
                                systems_account="444455556666", workflow_id="reconcile/gcp/acme-prod",
                                run_id=run_id, at=at, actions=list(actions))


def _instance(managed: str, key: str) -> InstanceRow:
    row = InstanceRow.__new__(InstanceRow)  # only the three fields the reader uses
    row.managed_instance_id, row.instance_key, row.provider = managed, key, "gcp"
    return row


DEREGISTER = ReconcileAction(ActionKind.DEREGISTER, "acme-prod/1", "mi-0000000000000000a", "the VM was deleted",
                             evidence={"vm": "absent from the project's instance list"}, applied=True)
RETAG = ReconcileAction(ActionKind.RETAG, "acme-prod/2", "mi-0000000000000000b", "patch-group label changed",
                        evidence={"label": "late", "tag": "early"}, tags={"Patch Group": "late"}, applied=True)
REPORT = ReconcileAction(ActionKind.REPORT_UNENROLLED, "acme-prod/3", "3", "labelled but never enrolled",
                         evidence={"labels": "rackspace-addon-patching=true"})
FAILED = ReconcileAction(ActionKind.DEREGISTER, "acme-prod/1", "mi-0000000000000000a", "the VM was deleted",
                         error="AwsThrottled: Rate exceeded")


def test_every_action_is_kept_with_its_evidence_and_a_retry_rewrites_the_same_rows(
    sessions: sessionmaker[Session],
) -> None:
    for _ in range(2):  # the activity retried after a lost answer
        with transaction(sessions) as session:
            assert reconcile_events.record(session, _run("run-1", DEREGISTER, RETAG, REPORT)) == 3
    with transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(reconcile_events.ReconcileEvent)) == 3
        gone = reconcile_events.for_instance(session, Scope.everything(), _instance("mi-0000000000000000a", "acme-prod/1"))
        retagged = reconcile_events.for_instance(session, Scope.everything(), _instance("mi-0000000000000000b", "acme-prod/2"))
    assert [(e["action"], e["applied"], e["evidence"]) for e in gone] == [
        ("deregister", True, {"vm": "absent from the project's instance list"})]
    assert gone[0]["systems_account"] == "444455556666" and gone[0]["run_id"] == "run-1"
    assert retagged[0]["tags"] == {"Patch Group": "late"} and retagged[0]["reason"] == "patch-group label changed"


def test_an_instance_shows_its_own_events_newest_first_and_only_in_scope(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        reconcile_events.record(session, _run("run-1", FAILED))
        reconcile_events.record(session, _run("run-2", DEREGISTER, at=AT + timedelta(hours=1)))
        reconcile_events.record(session, _run("run-3", RETAG, customer="globex"))
    instance = _instance("mi-0000000000000000a", "acme-prod/1")
    with transaction(sessions) as session:
        events = reconcile_events.for_instance(session, Scope.of_customer("acme"), instance)
        other = reconcile_events.for_instance(session, Scope.of_customer("globex"), instance)
        foreign = reconcile_events.for_instance(session, Scope.of_customer("acme"),
                                                _instance("mi-0000000000000000b", "acme-prod/2"))
    assert [(e["run_id"], e["applied"], e["error"]) for e in events] == [
        ("run-2", True, None), ("run-1", False, "AwsThrottled: Rate exceeded")]
    assert other == [] and foreign == []  # another customer's rows are never shown


def test_a_report_about_a_vm_is_shown_by_its_instance_key(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        reconcile_events.record(session, _run("run-1", REPORT))
        shown = reconcile_events.for_instance(session, Scope.everything(), _instance("mi-0000000000000000c", "acme-prod/3"))
    assert [e["action"] for e in shown] == ["report-unenrolled"]


def test_a_run_without_its_time_or_ids_is_refused(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        with pytest.raises(ValueError):
            reconcile_events.record(session, _run("run-1", DEREGISTER, at=datetime(2026, 11, 30)))
        with pytest.raises(ValueError):
            reconcile_events.record(session, _run("", DEREGISTER))

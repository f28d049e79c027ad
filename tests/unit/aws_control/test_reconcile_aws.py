"""Reconcile's aws-worker side against the local AWS: listing a cloud account's managed instances
and pending activations, and applying actions idempotently."""

from __future__ import annotations

import uuid
from datetime import timedelta

from activities.reconcile import ReconcileActivities
from clouds.aws.sessions import AwsSessions
from clouds.aws.ssm_agents import SsmAgents
from clouds.aws.ssm_config import SERVICE_ROLE, SsmConfigurator
from config.settings import AwsSettings
from contracts.enrollment import TAG_CLOUD_ACCOUNT, TAG_INSTANCE_KEY, TAG_PATCH_GROUP, AccountRef
from contracts.providers import Provider
from contracts.reconcile import ActionKind, ApplyActionInput, ListManagedInput, ReconcileAction
from tests.support.local_aws import LocalAws


def _activation(agents: SsmAgents, account: AccountRef, project: str, key: str, run: str):  # noqa: ANN202
    tags = {TAG_PATCH_GROUP: "early", TAG_INSTANCE_KEY: f"{project}/{key}", TAG_CLOUD_ACCOUNT: project}
    return agents.create_activation(account, service_role=SERVICE_ROLE, default_instance_name=f"vm-{key}",
                                    idempotency_key=f"enroll/gcp/{project}/{key}/{run}", tags=tags,
                                    expiry=timedelta(hours=1))


def test_nodes_and_pending_activations_of_one_cloud_account_and_actions(
    local_aws: LocalAws, sessions: AwsSessions, systems_account: AccountRef
) -> None:
    agents = SsmAgents(sessions)
    SsmConfigurator(sessions).ensure_service_role(systems_account)
    project, other = f"p-{uuid.uuid4().hex[:8]}", f"q-{uuid.uuid4().hex[:8]}"
    ssm = sessions.in_account("ssm", systems_account.role_arn)
    registered = {}
    for key, run, cloud in (("1", "a", project), ("1", "b", project), ("7", "a", other)):
        activation = _activation(agents, systems_account, cloud, key, run)
        registered[(cloud, key, run)] = local_aws.agent(ssm, {"ActivationId": activation.id, "ActivationCode": activation.code})
    pending = _activation(agents, systems_account, project, "2", "a")  # its VM never registered

    activities = ReconcileActivities(AwsSettings(endpoint_url=local_aws.endpoint), sessions=sessions)
    listed = activities.list_managed_nodes(ListManagedInput(account=systems_account, provider=Provider.GCP, cloud_account=project))
    assert sorted(n.instance_id for n in listed.nodes) == sorted(
        registered[(project, "1", r)].instance_id for r in ("a", "b")
    )
    assert {n.instance_key for n in listed.nodes} == {f"{project}/1"}
    assert all(n.ping_status == "Online" and n.registered_at for n in listed.nodes)
    assert pending.id in {a.activation_id for a in listed.activations}
    assert all(a.instance_key.startswith(f"{project}/") for a in listed.activations)

    first, second = (registered[(project, "1", r)].instance_id for r in ("a", "b"))
    act = lambda kind, target, **kw: activities.apply_reconcile_action(  # noqa: E731
        ApplyActionInput(account=systems_account, action=ReconcileAction(kind=kind, instance_key=f"{project}/1",
                                                                         target=target, reason="test", **kw)))
    act(ActionKind.RETAG, second, tags={TAG_PATCH_GROUP: "late"})
    assert agents.tags(systems_account, second)[TAG_PATCH_GROUP] == "late"
    act(ActionKind.DEREGISTER, first)
    act(ActionKind.DEREGISTER, first)  # already gone: still a success
    act(ActionKind.DELETE_ACTIVATION, pending.id)
    act(ActionKind.DELETE_ACTIVATION, pending.id)
    again = activities.list_managed_nodes(ListManagedInput(account=systems_account, provider=Provider.GCP, cloud_account=project))
    assert [n.instance_id for n in again.nodes] == [second]
    assert pending.id not in {a.activation_id for a in again.activations}

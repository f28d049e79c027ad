"""Reconcile's decisions, as pure functions of what the cloud and SSM report."""

from __future__ import annotations

from contracts.enrollment import TAG_ENROLLMENT_ID, TAG_INSTANCE_KEY, TAG_PATCH_GROUP
from contracts.models import VmMetadata
from contracts.providers import Provider
from contracts.reconcile import REPORT_ONLY, ActionKind, ManagedNode, PendingActivation, ReconcilePolicy
from workflows.reconcile_plan import plan_ec2, plan_hybrid

PROJECT = "acme-prod"
POLICY = ReconcilePolicy()
ON = {"rackspace-addon-patching": "true"}


def vm(instance_id: str, labels: dict[str, str] | None = None, state: str = "RUNNING") -> VmMetadata:
    return VmMetadata(provider=Provider.GCP, cloud_account=PROJECT, instance_id=instance_id, name=f"vm-{instance_id}",
                      labels=dict(ON if labels is None else labels), state=state)


def node(instance_id: str, key_id: str, group: str = "on-time", ping: str = "Online", registered: str = "2026-11-01T00:00:00+00:00") -> ManagedNode:
    key = f"{PROJECT}/{key_id}"
    return ManagedNode(instance_id=instance_id, instance_key=key, ping_status=ping, registered_at=registered,
                       tags={TAG_INSTANCE_KEY: key, TAG_PATCH_GROUP: group})


def kinds(actions) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(a.kind.value, a.target) for a in actions]


def test_a_true_estate_needs_nothing() -> None:
    assert plan_hybrid(PROJECT, [vm("1")], [node("mi-1", "1")], [], POLICY, "on-time") == []


def test_a_deleted_vm_is_deregistered_and_its_activation_deleted() -> None:
    pending = [PendingActivation(activation_id="act-9", instance_key=f"{PROJECT}/9")]
    actions = plan_hybrid(PROJECT, [vm("1")], [node("mi-1", "1"), node("mi-9", "9", ping="ConnectionLost")], pending, POLICY, "on-time")
    assert kinds(actions) == [("deregister", "mi-9"), ("delete-activation", "act-9")]
    assert actions[0].evidence["vm"] == "absent from the cloud's list"
    assert actions[0].evidence["managed_instance"] == "mi-9"


def test_a_list_missing_every_managed_vm_deregisters_no_online_agent() -> None:
    """A cloud list that misses the VM of every managed instance while their agents still report is
    wrong (a local vCenter restarted without its VMs, a listing cut short, a permission taken away):
    the online ones are reported, not deregistered; once an agent stops reporting, it goes."""
    nodes = [node("mi-1", "1"), node("mi-2", "2", ping="ConnectionLost")]
    actions = plan_hybrid(PROJECT, [vm("7")], nodes, [], POLICY, "on-time")
    assert kinds(actions) == [("report-absent-online", "mi-1"), ("deregister", "mi-2"), ("report-unenrolled", "7")]
    assert actions[0].kind in REPORT_ONLY and actions[0].evidence["ping_status"] == "Online"
    assert "agent is online" in actions[0].reason
    # runs started before this release (their histories replay) decided without the guard
    assert kinds(plan_hybrid(PROJECT, [vm("7")], nodes, [], POLICY, "on-time", keep_online=False)) == [
        ("deregister", "mi-1"), ("deregister", "mi-2"), ("report-unenrolled", "7")]
    # one VM deleted while the others are listed: deregistered at once, online or not
    assert kinds(plan_hybrid(PROJECT, [vm("2")], [node("mi-1", "1"), node("mi-2", "2")], [], POLICY, "on-time")) == [
        ("deregister", "mi-1")]


def test_a_terminated_vm_counts_as_gone() -> None:
    actions = plan_hybrid(PROJECT, [vm("1", state="terminated")], [node("mi-1", "1")], [], POLICY, "on-time")
    assert kinds(actions) == [("deregister", "mi-1")]


def test_a_changed_patch_group_label_retags() -> None:
    labels = {**ON, "rackspace-addon-patching-patchgroup": "late"}
    (action,) = plan_hybrid(PROJECT, [vm("1", labels)], [node("mi-1", "1", group="early")], [], POLICY, "on-time")
    assert action.kind is ActionKind.RETAG and action.tags == {TAG_PATCH_GROUP: "late"}
    assert action.evidence["tag_was"] == "early"


def test_no_group_label_means_the_links_default_and_a_bad_one_changes_nothing() -> None:
    (action,) = plan_hybrid(PROJECT, [vm("1")], [node("mi-1", "1", group="early")], [], POLICY, "late")
    assert action.tags == {TAG_PATCH_GROUP: "late"}
    bad = {**ON, "rackspace-addon-patching-patchgroup": "sometime"}
    assert plan_hybrid(PROJECT, [vm("1", bad)], [node("mi-1", "1")], [], POLICY, "late") == []


def test_a_removed_or_false_patching_label_deregisters() -> None:
    for labels in ({}, {"rackspace-addon-patching": "false"}):
        (action,) = plan_hybrid(PROJECT, [vm("1", labels)], [node("mi-1", "1")], [], POLICY, "on-time")
        assert action.kind is ActionKind.DEREGISTER and "no longer 'true'" in action.reason


def test_a_clone_keeps_the_newest_online_instance() -> None:
    nodes = [
        node("mi-old", "1", registered="2026-10-01T00:00:00+00:00"),
        node("mi-new", "1", registered="2026-11-01T00:00:00+00:00"),
        node("mi-newest-lost", "1", ping="ConnectionLost", registered="2026-11-20T00:00:00+00:00"),
    ]
    actions = plan_hybrid(PROJECT, [vm("1")], nodes, [], POLICY, "on-time")
    assert sorted(kinds(actions)) == [("deregister", "mi-newest-lost"), ("deregister", "mi-old")]
    assert all(a.evidence["kept"] == "mi-new" for a in actions)


def test_a_labelled_vm_that_never_enrolled_is_reported_and_an_unlabelled_one_is_not() -> None:
    actions = plan_hybrid(PROJECT, [vm("1"), vm("2"), vm("3", {})], [node("mi-1", "1")], [], POLICY, "on-time")
    assert kinds(actions) == [("report-unenrolled", "2")]
    assert "never enrolled" in actions[0].reason


def test_an_expired_activation_of_a_live_vm_is_deleted_a_fresh_one_is_kept() -> None:
    pending = [PendingActivation("act-1", f"{PROJECT}/2", expired=True), PendingActivation("act-2", f"{PROJECT}/3")]
    actions = plan_hybrid(PROJECT, [vm("2"), vm("3")], [], pending, POLICY, "on-time")
    assert ("delete-activation", "act-1") in kinds(actions) and ("delete-activation", "act-2") not in kinds(actions)


def ec2(instance_id: str, labels: dict[str, str], state: str = "running") -> VmMetadata:
    return VmMetadata(provider=Provider.AWS, cloud_account="111122223333", instance_id=instance_id, name=instance_id,
                      labels=labels, state=state, region="us-west-2")


def test_ec2_tags_follow_labels() -> None:
    enrolled = {**ON, TAG_ENROLLMENT_ID: "run-1", TAG_PATCH_GROUP: "early"}
    vms = [
        ec2("i-same", enrolled),
        ec2("i-moved", {**enrolled, "rackspace-addon-patching-patchgroup": "late"}),
        ec2("i-off", {**enrolled, "rackspace-addon-patching": "false"}),
        ec2("i-new", dict(ON)),
        ec2("i-gone", enrolled, state="terminated"),
    ]
    actions = plan_ec2("111122223333", vms, POLICY, "early")
    assert kinds(actions) == [("ec2-retag", "i-moved"), ("report-unenrolled", "i-new"), ("ec2-untag", "i-off")]
    assert actions[0].tags == {TAG_PATCH_GROUP: "late"} and actions[0].evidence["region"] == "us-west-2"


def test_offboarding_removes_everything_whatever_the_labels() -> None:
    from workflows.reconcile_plan import only_key, plan_offboard

    nodes = [node("mi-2", "2"), node("mi-1", "1")]
    pending = [PendingActivation("act-3", f"{PROJECT}/3")]
    actions = plan_offboard(PROJECT, [vm("1"), vm("2", {})], nodes, pending, ec2=False, reason="offboarded")
    assert kinds(actions) == [("deregister", "mi-1"), ("deregister", "mi-2"), ("delete-activation", "act-3")]
    assert kinds(only_key(actions, f"{PROJECT}/2")) == [("deregister", "mi-2")]
    assert only_key(actions, None) == actions
    enrolled = {**ON, TAG_ENROLLMENT_ID: "run-1"}
    ec2_vms = [ec2("i-b", enrolled), ec2("i-a", {}), ec2("i-c", enrolled, state="terminated")]
    assert kinds(plan_ec2_offboard := plan_offboard("111122223333", ec2_vms, [], [], ec2=True, reason="x")) == [("ec2-untag", "i-b")]
    assert plan_ec2_offboard[0].evidence["region"] == "us-west-2"

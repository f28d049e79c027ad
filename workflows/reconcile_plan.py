"""Every decision of a Reconcile run as a pure function of what the cloud and SSM report.

``plan_hybrid`` compares a cloud account's VMs (GCP, Azure, vCenter) with its systems account's
managed instances, matched by the instance-key tag; ``plan_ec2`` reads EC2 instances, whose
fleetpatch tags are on the instances themselves. Each action carries the evidence that decided
it. The workflow only lists, calls these, and applies what they return.
"""

from __future__ import annotations

from collections.abc import Iterable

from contracts.enrollment import (
    TAG_CLOUD_ACCOUNT,
    TAG_CUSTOMER,
    TAG_ENROLLMENT_ID,
    TAG_INSTANCE_KEY,
    TAG_PATCH_GROUP,
    TAG_PROVIDER,
)
from contracts.identity import instance_key
from contracts.models import VmMetadata
from contracts.providers import PatchGroup
from contracts.reconcile import (
    ActionKind,
    ManagedNode,
    PendingActivation,
    ReconcileAction,
    ReconcilePolicy,
)

#: States in which a VM no longer exists, whatever its cloud still lists.
GONE_STATES = frozenset({"terminated", "shutting-down", "deleting"})
#: Tags fleetpatch puts on an EC2 instance when it enrolls it.
EC2_FLEETPATCH_TAGS = (TAG_PATCH_GROUP, TAG_PROVIDER, TAG_CLOUD_ACCOUNT, TAG_CUSTOMER, TAG_INSTANCE_KEY, TAG_ENROLLMENT_ID)


def labelled(vm: VmMetadata, policy: ReconcilePolicy) -> bool:
    return vm.labels.get(policy.patching_label, "").strip().lower() == "true"


def wanted_group(vm: VmMetadata, policy: ReconcilePolicy, default: str) -> str | None:
    """The patch group the VM's label asks for (else the link's default); None when invalid."""
    value = vm.labels.get(policy.patch_group_label, "").strip().lower() or default
    return value if value in {g.value for g in PatchGroup} else None


def _node_evidence(node: ManagedNode) -> dict[str, str]:
    return {"managed_instance": node.instance_id, "ping_status": node.ping_status, "registered_at": node.registered_at}


def _vm_evidence(vm: VmMetadata, policy: ReconcilePolicy) -> dict[str, str]:
    return {
        "vm_name": vm.name,
        "vm_state": vm.state,
        policy.patching_label: vm.labels.get(policy.patching_label, "(absent)"),
    }


def _newest_online_first(nodes: Iterable[ManagedNode]) -> list[ManagedNode]:
    return sorted(nodes, key=lambda n: (n.ping_status == "Online", n.registered_at, n.instance_id), reverse=True)


def plan_hybrid(
    cloud_account: str,
    vms: list[VmMetadata],
    nodes: list[ManagedNode],
    activations: list[PendingActivation],
    policy: ReconcilePolicy,
    default_group: str,
    keep_online: bool = True,
) -> list[ReconcileAction]:
    """What keeps the systems account's managed instances true to the cloud's VMs. With
    ``keep_online``, a list that misses every managed instance's VM (a vCenter that lost its
    inventory, a listing cut short) deregisters none whose agent still reports: each is reported."""
    live = {instance_key(cloud_account, vm.instance_id): vm for vm in vms if vm.state.lower() not in GONE_STATES}
    listed = {instance_key(cloud_account, vm.instance_id) for vm in vms}
    by_key: dict[str, list[ManagedNode]] = {}
    for node in nodes:
        by_key.setdefault(node.instance_key, []).append(node)
    wiped = keep_online and not listed & set(by_key)
    actions: list[ReconcileAction] = []
    for key in sorted(by_key):
        if wiped:
            actions += [_absent(key, n) for n in by_key[key]]
            continue
        actions += _plan_key(key, live.get(key), by_key[key], policy, default_group)
    for activation in sorted(activations, key=lambda a: a.activation_id):
        if activation.instance_key not in live or activation.expired:
            why = "its VM is gone" if activation.instance_key not in live else "it expired unused"
            actions.append(ReconcileAction(
                kind=ActionKind.DELETE_ACTIVATION, instance_key=activation.instance_key, target=activation.activation_id,
                reason=f"activation left over: {why}", evidence={"activation": activation.activation_id},
            ))
    for key, vm in sorted(live.items()):
        if key not in by_key and labelled(vm, policy):
            actions.append(ReconcileAction(
                kind=ActionKind.REPORT_UNENROLLED, instance_key=key, target=vm.instance_id,
                reason="labelled for patching but never enrolled: its startup script is missing or failing",
                evidence=_vm_evidence(vm, policy),
            ))
    return actions


def _plan_key(
    key: str, vm: VmMetadata | None, nodes: list[ManagedNode], policy: ReconcilePolicy, default_group: str
) -> list[ReconcileAction]:
    if vm is None:
        return [_deregister(key, n, "the VM no longer exists in its cloud", {"vm": "absent from the cloud's list"}) for n in nodes]
    if not labelled(vm, policy):
        reason = f"label {policy.patching_label!r} is no longer 'true'"
        return [_deregister(key, n, reason, _vm_evidence(vm, policy)) for n in nodes]
    keep, *others = _newest_online_first(nodes)
    actions = [
        _deregister(key, n, f"duplicate of {keep.instance_id} (newest online kept)", {"kept": keep.instance_id})
        for n in others
    ]
    group = wanted_group(vm, policy, default_group)
    if group is not None and keep.tags.get(TAG_PATCH_GROUP) != group:
        actions.append(ReconcileAction(
            kind=ActionKind.RETAG, instance_key=key, target=keep.instance_id,
            reason=f"patch-group label changed to {group!r}",
            evidence={**_node_evidence(keep), "tag_was": keep.tags.get(TAG_PATCH_GROUP, "(absent)"),
                      policy.patch_group_label: vm.labels.get(policy.patch_group_label, "(absent: link default)")},
            tags={TAG_PATCH_GROUP: group},
        ))
    return actions


def _absent(key: str, node: ManagedNode) -> ReconcileAction:
    evidence = {"vm": "absent from the cloud's list"}
    if node.ping_status != "Online":
        return _deregister(key, node, "the VM no longer exists in its cloud", evidence)
    return ReconcileAction(
        kind=ActionKind.REPORT_ABSENT_ONLINE, instance_key=key, target=node.instance_id,
        reason="absent from the cloud's list but its agent is online: not deregistered (check the listing)",
        evidence={**_node_evidence(node), **evidence},
    )


def _deregister(key: str, node: ManagedNode, reason: str, evidence: dict[str, str]) -> ReconcileAction:
    return ReconcileAction(
        kind=ActionKind.DEREGISTER, instance_key=key, target=node.instance_id, reason=reason,
        evidence={**_node_evidence(node), **evidence},
    )


def plan_ec2(cloud_account: str, vms: list[VmMetadata], policy: ReconcilePolicy, default_group: str) -> list[ReconcileAction]:
    """EC2: the fleetpatch tags on each instance follow its labels (SSM drops terminated ones)."""
    actions: list[ReconcileAction] = []
    for vm in sorted(vms, key=lambda v: v.instance_id):
        key = instance_key(cloud_account, vm.instance_id)
        if vm.state.lower() in GONE_STATES:
            continue
        enrolled = TAG_ENROLLMENT_ID in vm.labels
        evidence = {**_vm_evidence(vm, policy), "region": vm.region or ""}
        if enrolled and not labelled(vm, policy):
            actions.append(ReconcileAction(
                kind=ActionKind.EC2_UNTAG, instance_key=key, target=vm.instance_id,
                reason=f"label {policy.patching_label!r} is no longer 'true'", evidence=evidence,
            ))
        elif enrolled:
            group = wanted_group(vm, policy, default_group)
            if group is not None and vm.labels.get(TAG_PATCH_GROUP) != group:
                actions.append(ReconcileAction(
                    kind=ActionKind.EC2_RETAG, instance_key=key, target=vm.instance_id,
                    reason=f"patch-group label changed to {group!r}",
                    evidence={**evidence, "tag_was": vm.labels.get(TAG_PATCH_GROUP, "(absent)")},
                    tags={TAG_PATCH_GROUP: group},
                ))
        elif labelled(vm, policy):
            actions.append(ReconcileAction(
                kind=ActionKind.REPORT_UNENROLLED, instance_key=key, target=vm.instance_id,
                reason="labelled for patching but never enrolled: its agent or startup is missing or failing",
                evidence=evidence,
            ))
    return actions


def plan_offboard(
    cloud_account: str, vms: list[VmMetadata], nodes: list[ManagedNode], activations: list[PendingActivation],
    *, ec2: bool, reason: str,
) -> list[ReconcileAction]:
    """Offboarding: every managed instance deregistered, every pending activation deleted; on EC2
    the fleetpatch tags removed from every instance an enrollment tagged. Labels do not matter."""
    if ec2:
        return [
            ReconcileAction(kind=ActionKind.EC2_UNTAG, instance_key=instance_key(cloud_account, vm.instance_id),
                            target=vm.instance_id, reason=reason, evidence={"vm_name": vm.name, "region": vm.region or ""})
            for vm in sorted(vms, key=lambda v: v.instance_id)
            if TAG_ENROLLMENT_ID in vm.labels and vm.state.lower() not in GONE_STATES
        ]
    actions = [_deregister(n.instance_key, n, reason, {}) for n in sorted(nodes, key=lambda n: n.instance_id)]
    return actions + [
        ReconcileAction(kind=ActionKind.DELETE_ACTIVATION, instance_key=a.instance_key, target=a.activation_id,
                        reason=reason, evidence={"activation": a.activation_id})
        for a in sorted(activations, key=lambda a: a.activation_id)
    ]


def only_key(actions: list[ReconcileAction], key: str | None) -> list[ReconcileAction]:
    """The actions about one VM, when a run is about one VM."""
    return actions if key is None else [a for a in actions if a.instance_key == key]

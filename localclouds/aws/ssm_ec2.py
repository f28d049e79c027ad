"""EC2 instances as SSM managed nodes.

On EC2 the agent needs no activation: it calls UpdateInstanceInformation with its EC2 instance id
(``i-...``) and the instance profile's credentials, and SSM lists the instance from then on
(ResourceType ``EC2Instance``, no ActivationId). Here the instance must exist in moto's EC2 in
the caller's account and region and be pending or running; any credentials of that account
stand for the instance profile (moto enforces no IAM). An EC2 node's tags are its EC2 tags: they
are re-read from moto before every SSM request of its account, so ``Patch Group`` set with EC2
CreateTags picks the node's baseline and tag targets, as in SSM; a terminated instance is
dropped from the list.
"""

from __future__ import annotations

from typing import Any

from localclouds.aws.context import RequestContext
from localclouds.aws.protocol import AwsError
from localclouds.aws.ssm_state import ManagedInstance, RegionState, SsmState

EC2_RESOURCE_TYPE = "EC2Instance"
LIVE_STATES = ("pending", "running")


def is_ec2_id(instance_id: str) -> bool:
    return instance_id.startswith("i-")


def _moto_instance(account_id: str, region: str, instance_id: str) -> Any | None:
    from moto.ec2.exceptions import InvalidInstanceIdError
    from moto.ec2.models import ec2_backends

    try:
        return ec2_backends[account_id][region].get_instance(instance_id)
    except InvalidInstanceIdError:
        return None


def _tags(instance: Any) -> dict[str, str]:
    return {t["key"]: t["value"] for t in instance.get_tags()}


class Ec2Nodes:
    """Find-or-create the managed-node record of an EC2 instance; keep its tags current.

    ``refresh`` runs before every SSM request, so it visits only the region's EC2 nodes (an index
    found once per region by one scan, then kept by ``node_for_ping``, the only place that makes
    them), never the region's thousands of hybrid instances."""

    def __init__(self, state: SsmState) -> None:
        self.state = state
        self._index: dict[int, tuple[RegionState, set[str]]] = {}  # id(region) -> its EC2 node ids

    def _ec2_ids(self, region: RegionState) -> set[str]:
        entry = self._index.get(id(region))
        if entry is None or entry[0] is not region:
            found = {i for i, node in region.instances.items() if node.resource_type == EC2_RESOURCE_TYPE}
            entry = self._index[id(region)] = (region, found)
        return entry[1]

    def node_for_ping(self, ctx: RequestContext, instance_id: str) -> ManagedInstance:
        region = self.state.region(ctx.account_id, ctx.region)
        found = _moto_instance(ctx.account_id, ctx.region, instance_id)
        if found is None or found._state.name not in LIVE_STATES:
            raise AwsError("InvalidInstanceId", f"Instance Id {instance_id} is not valid.")
        node = region.instances.get(instance_id)
        if node is None or node.deregistered:
            profile = getattr(found, "iam_instance_profile", None) or {}
            node = ManagedInstance(
                instance_id=instance_id, activation_id="",
                iam_role=str(profile.get("Arn", "")) if isinstance(profile, dict) else "",
                registered=ctx.now, public_key=None, fingerprint="",
                resource_type=EC2_RESOURCE_TYPE,
            )
            region.instances[instance_id] = node
            self._ec2_ids(region).add(instance_id)
        node.tags = _tags(found)
        node.name = node.tags.get("Name")
        return node

    def refresh(self, region: RegionState) -> None:
        """Re-read the EC2 tags and state of the region's EC2 nodes."""
        for instance_id in self._ec2_ids(region):
            node = region.instances.get(instance_id)
            if node is None or node.resource_type != EC2_RESOURCE_TYPE or node.deregistered:
                continue
            found = _moto_instance(region.account_id, region.region, node.instance_id)
            if found is None or found._state.name not in LIVE_STATES:
                node.deregistered = True
                continue
            node.tags = _tags(found)
            node.name = node.tags.get("Name")

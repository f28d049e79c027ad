"""DescribeInstanceInformation and tagging of managed instances and patch baselines.

Tags of other resource types (Parameter, Document, MaintenanceWindow) stay with moto, which
owns those resources; the handlers hand such requests back to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from localclouds.aws.context import PASS_TO_MOTO, PassToMoto, RequestContext
from localclouds.aws.protocol import (
    AwsError,
    dict_to_tags,
    paginate,
    require,
    string_list,
    tags_to_dict,
)
from localclouds.aws.ssm_state import ManagedInstance, RegionState, SsmState

LEGACY_KEYS = {
    "InstanceIds", "AgentVersion", "PingStatus", "PlatformTypes", "ActivationIds", "IamRole",
    "ResourceType", "AssociationStatus",
}
PING_STATUSES = {"Online", "ConnectionLost", "Inactive"}
PLATFORM_TYPES = {"Windows", "Linux", "MacOS"}
RESOURCE_TYPES = {"ManagedInstance", "EC2Instance"}
ASSOCIATION_STATUSES = {"Pending", "Success", "Failed"}
OUR_TAGGED_TYPES = {"ManagedInstance", "PatchBaseline"}


def targets_instance(targets: list[dict[str, Any]], instance: ManagedInstance) -> bool:
    """Does an SSM Targets list (InstanceIds / tag:Key / tag-key) select this instance?"""
    if not targets:
        return False
    for target in targets:
        key, values = target.get("Key", ""), target.get("Values") or []
        if key == "InstanceIds":
            selected = "*" in values or instance.instance_id in values
        elif key.startswith("tag:"):
            selected = instance.tags.get(key[4:]) in values
        elif key == "tag-key":
            selected = any(v in instance.tags for v in values)
        else:
            selected = False
        if not selected:
            return False
    return True


def association_runs(region: RegionState, instance: ManagedInstance
                     ) -> list[dict[str, Any]] | None:
    """The agent's last reported run of every association targeting the instance (None: no
    association targets it; an empty dict stands for one that has not run yet)."""
    relevant = [a for a in region.associations.values() if targets_instance(a.targets, instance)]
    if not relevant:
        return None
    return [region.association_runs.get((instance.instance_id, a.association_id)) or {}
            for a in relevant]


def association_status(region: RegionState, instance: ManagedInstance) -> str | None:
    runs = association_runs(region, instance)
    if runs is None:
        return None
    statuses = {run.get("Status", "Pending") for run in runs}
    if statuses & {"Pending", "InProgress"}:
        return "Pending"
    return "Failed" if "Failed" in statuses else "Success"


class InstanceService:
    """Managed-instance listing and resource tags."""

    def __init__(self, state: SsmState) -> None:
        self.state = state

    def handlers(self) -> dict[str, Any]:
        return {
            "DescribeInstanceInformation": self.describe_instance_information,
            "AddTagsToResource": self.add_tags,
            "RemoveTagsFromResource": self.remove_tags,
            "ListTagsForResource": self.list_tags,
        }

    def describe_instance_information(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        region = self.state.region(ctx.account_id, ctx.region)
        if params.get("Filters") and params.get("InstanceInformationFilterList"):
            raise AwsError("InvalidInstanceInformationFilterValue",
                           "InstanceInformationFilterList and Filters can't be used together.")
        filters = [(f.get("key"), string_list(f.get("valueSet"), "valueSet"), False)
                   for f in params.get("InstanceInformationFilterList") or []]
        filters += [(f.get("Key"), string_list(f.get("Values"), "Values"), True) for f in params.get("Filters") or []]
        instances = [i for i in region.instances.values() if not i.deregistered]
        narrowed: list[ManagedInstance] | None = instances
        for key, values, tags in filters:
            narrowed = _narrow(narrowed, key, values, tags) if narrowed is not None else None
        if narrowed is not None:  # no filter needs a computed field: rows only for the page
            for key, values, tags in filters:
                self._filter(region, [], key, values, tags=tags)  # the same refusals of bad filters
            narrowed.sort(key=lambda i: i.registered)
            chosen, token = paginate(narrowed, params, default=10, maximum=50, minimum=5)
            page = [self._row(region, i, ctx.now) for i in chosen]
        else:
            rows = [self._row(region, i, ctx.now) for i in instances]
            for key, values, tags in filters:
                rows = self._filter(region, rows, key, values, tags=tags)
            rows.sort(key=lambda row: row["RegistrationDate"])
            page, token = paginate(rows, params, default=10, maximum=50, minimum=5)
        result: dict[str, Any] = {"InstanceInformationList": page}
        if token:
            result["NextToken"] = token
        return result

    def _row(self, region: RegionState, instance: ManagedInstance, now: datetime) -> dict[str, Any]:
        """One instance's InstanceInformation (its ping and association status computed now)."""
        ec2 = instance.resource_type == "EC2Instance"
        row: dict[str, Any] = {
            "InstanceId": instance.instance_id,
            "PingStatus": self.state.ping_status(instance, now),
            "IamRole": instance.iam_role,
            "RegistrationDate": instance.registered,
            "ResourceType": instance.resource_type,
            "SourceId": instance.instance_id,
            "SourceType": "AWS::EC2::Instance" if ec2 else "AWS::SSM::ManagedInstance",
            "IsLatestVersion": False,
        }
        if not ec2:
            row["ActivationId"] = instance.activation_id
        if instance.name:
            row["Name"] = instance.name
        if instance.last_ping:
            row["LastPingDateTime"] = instance.last_ping
        for name, value in instance.info.items():
            if name in ("AgentVersion", "PlatformName", "PlatformType", "PlatformVersion",
                        "ComputerName", "IPAddress"):
                row[name] = value
        status = association_status(region, instance)
        if status:
            row["AssociationStatus"] = status
            runs = association_runs(region, instance) or []
            ran = [r["ExecutionDate"] for r in runs if r.get("ExecutionDate")]
            succeeded = [r["ExecutionDate"] for r in runs if r.get("Status") == "Success"]
            if ran:
                row["LastAssociationExecutionDate"] = max(ran)
            if succeeded:
                row["LastSuccessfulAssociationExecutionDate"] = max(succeeded)
        return row

    def _filter(
        self, region: RegionState, rows: list[dict[str, Any]], key: Any, values: list[str],
        tags: bool,
    ) -> list[dict[str, Any]]:
        if not isinstance(key, str) or not values:
            raise AwsError("InvalidFilterKey", f"The filter key {key} isn't valid.")
        if key.startswith("tag:") and tags:
            tag = key[4:]
            return [r for r in rows if region.instances[r["InstanceId"]].tags.get(tag) in values]
        if key == "tag-key" and tags:
            return [r for r in rows
                    if any(v in region.instances[r["InstanceId"]].tags for v in values)]
        if key not in LEGACY_KEYS:
            raise AwsError("InvalidFilterKey", f"The filter key {key} isn't valid.")
        allowed = {"PingStatus": PING_STATUSES, "PlatformTypes": PLATFORM_TYPES,
                   "ResourceType": RESOURCE_TYPES, "AssociationStatus": ASSOCIATION_STATUSES}
        if key in allowed and not set(values) <= allowed[key]:
            raise AwsError("InvalidInstanceInformationFilterValue",
                           f"The filter value {values} isn't valid for {key}.")
        field = {"InstanceIds": "InstanceId", "ActivationIds": "ActivationId",
                 "PlatformTypes": "PlatformType"}.get(key, key)
        return [r for r in rows if r.get(field) in values]

    # -- tags ---------------------------------------------------------------------------------

    def _tags_of(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, str] | None:
        resource_type = require(params, "ResourceType")
        if resource_type not in OUR_TAGGED_TYPES:
            return None
        resource_id = require(params, "ResourceId")
        region = self.state.region(ctx.account_id, ctx.region)
        if resource_type == "ManagedInstance":
            instance = region.instances.get(resource_id)
            # EC2 instances carry their tags in EC2; SSM tags only managed (mi-) instances.
            if instance is None or instance.deregistered or (
                instance.resource_type != "ManagedInstance"
            ):
                raise AwsError("InvalidResourceId", "The resource ID isn't valid.")
            return instance.tags
        baseline = region.baselines.get(resource_id)
        if baseline is None or baseline.aws_owned:
            raise AwsError("InvalidResourceId", "The resource ID isn't valid.")
        return baseline.tags

    def add_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any] | PassToMoto:
        tags = self._tags_of(ctx, params)
        if tags is None:
            return PASS_TO_MOTO
        new = tags_to_dict(require(params, "Tags", list))
        if len({**tags, **new}) > 50:
            raise AwsError("TooManyTagsError", "The resource can have at most 50 tags.")
        tags.update(new)
        return {}

    def remove_tags(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any] | PassToMoto:
        tags = self._tags_of(ctx, params)
        if tags is None:
            return PASS_TO_MOTO
        for key in string_list(require(params, "TagKeys", list), "TagKeys"):
            tags.pop(key, None)
        return {}

    def list_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any] | PassToMoto:
        tags = self._tags_of(ctx, params)
        if tags is None:
            return PASS_TO_MOTO
        return {"TagList": dict_to_tags(tags)}


def _narrow(instances: list[ManagedInstance], key: Any, values: list[str], tags: bool) -> list[ManagedInstance] | None:
    """What ``_filter`` keeps, chosen on the instances themselves, for the filters that need no
    computed field (ids, tags); None for the others. A full listing of 10,000 instances in pages
    of 50 then builds 10,000 rows, not 200 times 10,000."""
    if not isinstance(key, str) or not values:
        return None
    if tags and key.startswith("tag:"):
        return [i for i in instances if i.tags.get(key[4:]) in values]
    if key == "InstanceIds":
        return [i for i in instances if i.instance_id in values]
    if key == "ActivationIds":
        return [i for i in instances if i.resource_type != "EC2Instance" and i.activation_id in values]
    return None

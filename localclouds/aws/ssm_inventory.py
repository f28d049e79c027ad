"""Inventory, control side: GetInventory and ListInventoryEntries.

What is served is what agents reported with PutInventory (``AWS:Application`` from the
AWS-GatherSoftwareInventory association, ``AWS:PatchSummary`` from patching, any ``Custom:``
type) plus ``AWS:InstanceInformation``, which SSM itself keeps for every managed instance from
the agent's health pings (UpdateInstanceInformation), as the real service does.

Filters follow the API: GetInventory keys are ``TypeName.Attribute``
(``AWS:InstanceInformation.InstanceId``, ``AWS:Application.Name``); ListInventoryEntries keys
are attribute names of its type. Types: Equal, NotEqual, BeginWith, LessThan, GreaterThan, Exists.
Aggregators are refused (not emulated).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from localclouds.aws.context import RequestContext
from localclouds.aws.protocol import AwsError, iso8601, paginate, require, validation
from localclouds.aws.ssm_state import ManagedInstance, RegionState, SsmState

INSTANCE_INFORMATION = "AWS:InstanceInformation"
FILTER_TYPES = {"Equal", "NotEqual", "BeginWith", "LessThan", "GreaterThan", "Exists"}


def instance_information(instance: ManagedInstance, ping_status: str) -> dict[str, Any]:
    """The AWS:InstanceInformation item of one instance, from its registration and pings."""
    info = instance.info
    content = {
        "AgentType": info.get("AgentName") or "amazon-ssm-agent",
        "AgentVersion": info.get("AgentVersion", ""),
        "ComputerName": info.get("ComputerName", ""),
        "InstanceId": instance.instance_id,
        "InstanceStatus": "Active" if ping_status == "Online" else ping_status,
        "IpAddress": info.get("IPAddress", ""),
        "PlatformName": info.get("PlatformName", ""),
        "PlatformType": info.get("PlatformType", ""),
        "PlatformVersion": info.get("PlatformVersion", ""),
        "ResourceType": instance.resource_type,
    }
    captured = instance.last_ping or instance.registered
    return {"TypeName": INSTANCE_INFORMATION, "SchemaVersion": "1.0",
            "CaptureTime": iso8601(captured), "Content": [content]}


def _hashed(item: dict[str, Any]) -> dict[str, Any]:
    content = item.get("Content") or []
    digest = hashlib.md5(json.dumps(content, sort_keys=True).encode(), usedforsecurity=False)
    result = {"TypeName": item["TypeName"], "SchemaVersion": item.get("SchemaVersion", "1.0"),
              "ContentHash": digest.hexdigest(), "Content": content}
    if item.get("CaptureTime"):
        result["CaptureTime"] = item["CaptureTime"]
    return result


def _matches(value: Any, operator: str, wanted: list[str]) -> bool:
    if operator == "Exists":
        return value is not None
    if value is None:
        return False
    text = str(value)
    if operator == "Equal":
        return text in wanted
    if operator == "NotEqual":
        return text not in wanted
    if operator == "BeginWith":
        return any(text.startswith(w) for w in wanted)
    try:
        number, bounds = float(text), [float(w) for w in wanted]
    except ValueError:
        number, bounds = text, wanted  # type: ignore[assignment]
    if operator == "LessThan":
        return any(number < b for b in bounds)  # type: ignore[operator]
    return any(number > b for b in bounds)  # type: ignore[operator]


def _parse_filters(params: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    parsed = []
    for flt in params.get("Filters") or []:
        key, values = flt.get("Key") if isinstance(flt, dict) else None, flt.get("Values") or []
        operator = flt.get("Type") or "Equal"
        if not isinstance(key, str) or not key or not isinstance(values, list) or not values:
            raise AwsError("InvalidFilter", "Each filter needs a Key and Values.")
        if operator not in FILTER_TYPES:
            raise AwsError("InvalidFilter", f"The filter type {operator} isn't valid.")
        parsed.append((key, operator, [str(v) for v in values]))
    return parsed


class InventoryService:
    def __init__(self, state: SsmState) -> None:
        self.state = state

    def handlers(self) -> dict[str, Any]:
        return {"GetInventory": self.get_inventory,
                "ListInventoryEntries": self.list_entries}

    def items_of(self, region: RegionState, instance: ManagedInstance, now: Any
                 ) -> dict[str, dict[str, Any]]:
        """Every inventory type of an instance: what its agent reported, plus its information."""
        items = dict(region.inventory.get(instance.instance_id, {}))
        items[INSTANCE_INFORMATION] = instance_information(
            instance, self.state.ping_status(instance, now))
        return items

    def get_inventory(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("Aggregators"):
            raise validation("Aggregators are not supported by this local AWS.")
        wanted = [a.get("TypeName") for a in params.get("ResultAttributes") or []
                  if isinstance(a, dict)]
        filters = _parse_filters(params)
        for key, _, _ in filters:
            if "." not in key:
                raise AwsError("InvalidFilterKey", f"The filter key {key} isn't valid: use "
                               "TypeName.Attribute.")
        region = self.state.region(ctx.account_id, ctx.region)
        entities = []
        for instance in self._candidates(region, filters):
            if instance.deregistered:
                continue
            items = self.items_of(region, instance, ctx.now)
            if not all(self._entity_matches(items, f) for f in filters):
                continue
            if wanted:
                items = {t: i for t, i in items.items() if t in wanted}
                if not items:
                    continue
            entities.append({"Id": instance.instance_id,
                             "Data": {t: _hashed(i) for t, i in sorted(items.items())}})
        page, token = paginate(entities, params, default=50, maximum=50, minimum=1)
        result: dict[str, Any] = {"Entities": page}
        if token:
            result["NextToken"] = token
        return result

    @staticmethod
    def _candidates(region: RegionState, filters: list[tuple[str, str, list[str]]]) -> list[ManagedInstance]:
        """The instances a request can match, by id: an ``InstanceId`` Equal filter names them
        (an estate sync asks for 40 at a time), so a lookup serves it, not a scan of the region;
        every filter is still applied to each."""
        named = [set(values) for key, operator, values in filters
                 if key == f"{INSTANCE_INFORMATION}.InstanceId" and operator == "Equal"]
        if not named:
            return sorted(region.instances.values(), key=lambda i: i.instance_id)
        ids = set.intersection(*named)
        return [region.instances[i] for i in sorted(ids) if i in region.instances]

    @staticmethod
    def _entity_matches(items: dict[str, dict[str, Any]],
                        flt: tuple[str, str, list[str]]) -> bool:
        key, operator, values = flt
        type_name, _, attribute = key.rpartition(".")
        rows = (items.get(type_name) or {}).get("Content") or []
        return any(_matches(row.get(attribute), operator, values) for row in rows)

    def list_entries(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        instance_id = require(params, "InstanceId")
        type_name = require(params, "TypeName")
        region = self.state.region(ctx.account_id, ctx.region)
        instance = region.instances.get(instance_id)
        if instance is None or instance.deregistered:
            raise AwsError("InvalidInstanceId", f"Instance Id {instance_id} is not valid.")
        if not type_name.startswith(("AWS:", "Custom:")):
            raise AwsError("InvalidTypeNameException", f"Type name {type_name} isn't valid.")
        item = self.items_of(region, instance, ctx.now).get(type_name) or {}
        entries = list(item.get("Content") or [])
        for key, operator, values in _parse_filters(params):
            entries = [e for e in entries if _matches(e.get(key), operator, values)]
        page, token = paginate(entries, params, default=50, maximum=50, minimum=1)
        result: dict[str, Any] = {"TypeName": type_name, "InstanceId": instance_id,
                                  "Entries": page}
        if item:
            result["SchemaVersion"] = item.get("SchemaVersion", "1.0")
            if item.get("CaptureTime"):
                result["CaptureTime"] = item["CaptureTime"]
        if token:
            result["NextToken"] = token
        return result

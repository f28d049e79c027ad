"""What agents report about patching, and what the control side reads back.

Agents write with PutInventory (type AWS:PatchSummary -> the instance patch state) and
PutComplianceItems (ComplianceType Patch -> the per-patch list); the control side reads with
DescribeInstancePatchStates(ForPatchGroup), DescribeInstancePatches and DescribePatchGroupState.
GetDeployablePatchSnapshotForInstance gives the agent a URL (served by this emulator) with the
baseline that applies to it, chosen by its Patch Group tag and operating system.
"""

from __future__ import annotations

import secrets
from typing import Any

from localclouds.aws.context import RequestContext
from localclouds.aws.protocol import AwsError, paginate, parse_time, require, string_list
from localclouds.aws.ssm_hybrid import HybridService
from localclouds.aws.ssm_patch import PatchBaselineService
from localclouds.aws.ssm_state import Location, ManagedInstance, SsmState

COUNTS = (
    "InstalledCount", "InstalledOtherCount", "InstalledPendingRebootCount",
    "InstalledRejectedCount", "MissingCount", "FailedCount", "UnreportedNotApplicableCount",
    "NotApplicableCount", "AvailableSecurityUpdateCount", "CriticalNonCompliantCount",
    "SecurityNonCompliantCount", "OtherNonCompliantCount",
)
STATE_FILTER_KEYS = COUNTS[:8]
PATCH_STATES = {
    "INSTALLED": "INSTALLED", "INSTALLED_OTHER": "INSTALLED_OTHER",
    "INSTALLEDOTHER": "INSTALLED_OTHER", "INSTALLED_PENDING_REBOOT": "INSTALLED_PENDING_REBOOT",
    "INSTALLEDPENDINGREBOOT": "INSTALLED_PENDING_REBOOT",
    "INSTALLED_REJECTED": "INSTALLED_REJECTED", "INSTALLEDREJECTED": "INSTALLED_REJECTED",
    "MISSING": "MISSING", "NOT_APPLICABLE": "NOT_APPLICABLE", "NOTAPPLICABLE": "NOT_APPLICABLE",
    "FAILED": "FAILED", "AVAILABLE_SECURITY_UPDATE": "AVAILABLE_SECURITY_UPDATE",
}
PLATFORM_OS = (  # (prefix of PlatformName, version prefix or "", baseline OperatingSystem)
    ("Microsoft Windows", "", "WINDOWS"), ("Ubuntu", "", "UBUNTU"), ("Debian", "", "DEBIAN"),
    ("CentOS", "", "CENTOS"), ("Red Hat", "", "REDHAT_ENTERPRISE_LINUX"),
    ("Oracle", "", "ORACLE_LINUX"), ("Rocky", "", "ROCKY_LINUX"), ("Alma", "", "ALMA_LINUX"),
    ("SLES", "", "SUSE"), ("SUSE", "", "SUSE"), ("Amazon Linux AMI", "", "AMAZON_LINUX"),
    ("Amazon Linux", "2023", "AMAZON_LINUX_2023"), ("Amazon Linux", "2022", "AMAZON_LINUX_2022"),
    ("Amazon Linux", "2", "AMAZON_LINUX_2"), ("Amazon Linux", "", "AMAZON_LINUX"),
    ("macOS", "", "MACOS"), ("Mac OS", "", "MACOS"), ("Raspbian", "", "RASPBIAN"),
)


def baseline_os(instance: ManagedInstance) -> str | None:
    name = instance.info.get("PlatformName", "")
    version = instance.info.get("PlatformVersion", "")
    for prefix, version_prefix, os_name in PLATFORM_OS:
        if name.startswith(prefix) and version.startswith(version_prefix):
            return os_name
    return None


def patch_group_of(instance: ManagedInstance) -> str | None:
    return instance.tags.get("Patch Group") or instance.tags.get("PatchGroup")


class PatchStateService:
    def __init__(self, state: SsmState, hybrid: HybridService,
                 baselines: PatchBaselineService) -> None:
        self.state = state
        self.hybrid = hybrid
        self.baselines = baselines

    def handlers(self) -> dict[str, Any]:
        return {
            "PutInventory": self.put_inventory,
            "PutComplianceItems": self.put_compliance_items,
            "DescribeInstancePatchStates": self.describe_states,
            "DescribeInstancePatchStatesForPatchGroup": self.describe_states_for_group,
            "DescribeInstancePatches": self.describe_patches,
            "DescribePatchGroupState": self.describe_group_state,
            "GetDeployablePatchSnapshotForInstance": self.get_snapshot,
        }

    def put_inventory(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        instance = self.hybrid.instance_for_agent(ctx, require(params, "InstanceId"))
        items = require(params, "Items", list)
        region = self.state.region(ctx.account_id, ctx.region)
        stored = region.inventory.setdefault(instance.instance_id, {})
        for item in items:
            type_name = item.get("TypeName") if isinstance(item, dict) else None
            if not isinstance(type_name, str) or not type_name.startswith(("AWS:", "Custom:")):
                raise AwsError("InvalidTypeNameException", f"Type name {type_name} isn't valid.")
            content = item.get("Content") or []
            if not isinstance(content, list) or not all(isinstance(c, dict) for c in content):
                raise AwsError("InvalidItemContentException", "Content must be a list of maps.")
            stored[type_name] = item
            if type_name == "AWS:PatchSummary" and content:
                region.patch_states[instance.instance_id] = _patch_state(
                    instance.instance_id, content[0])
        instance.last_inventory = ctx.now
        return {"Message": "Inventory upload succeeded"}

    def put_compliance_items(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if require(params, "ResourceType") != "ManagedInstance":
            raise AwsError("InvalidResourceType", "The resource type isn't valid.")
        resource_id = require(params, "ResourceId")
        try:
            instance = self.hybrid.instance_for_agent(ctx, resource_id)
        except AwsError as error:
            if error.code == "InvalidInstanceId":
                raise AwsError("InvalidResourceId", "The resource ID isn't valid.") from None
            raise
        compliance_type = require(params, "ComplianceType")
        require(params, "ExecutionSummary", dict)
        items = require(params, "Items", list)
        region = self.state.region(ctx.account_id, ctx.region)
        key = (instance.instance_id, compliance_type)
        current = {} if params.get("UploadType", "COMPLETE") == "COMPLETE" else dict(
            region.compliance.get(key, {}))
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("Id"), str):
                raise AwsError("InvalidItemContentException", "Each item needs an Id.")
            current[item["Id"]] = item
        region.compliance[key] = current
        return {}

    def _states(self, ctx: RequestContext) -> dict[str, dict[str, Any]]:
        region = self.state.region(ctx.account_id, ctx.region)
        return {i: s for i, s in region.patch_states.items()
                if i in region.instances and not region.instances[i].deregistered}

    def describe_states(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        instance_ids = string_list(require(params, "InstanceIds", list), "InstanceIds")
        if not 1 <= len(instance_ids) <= 50:
            raise AwsError("ValidationException", "InstanceIds must hold 1 to 50 ids")
        states = self._states(ctx)
        rows = [states[i] for i in instance_ids if i in states]
        page, token = paginate(rows, params, default=50, maximum=100, minimum=10)
        result: dict[str, Any] = {"InstancePatchStates": page}
        if token:
            result["NextToken"] = token
        return result

    def describe_states_for_group(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        group = require(params, "PatchGroup")
        rows = [s for s in self._states(ctx).values() if s.get("PatchGroup") == group]
        for flt in params.get("Filters") or []:
            rows = [r for r in rows if _count_matches(r, flt)]
        rows.sort(key=lambda r: r["InstanceId"])
        page, token = paginate(rows, params, default=50, maximum=100, minimum=10)
        result: dict[str, Any] = {"InstancePatchStates": page}
        if token:
            result["NextToken"] = token
        return result

    def describe_patches(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        instance_id = require(params, "InstanceId")
        region = self.state.region(ctx.account_id, ctx.region)
        instance = region.instances.get(instance_id)
        if instance is None or instance.deregistered:
            raise AwsError("InvalidInstanceId", f"Instance Id {instance_id} is not valid.")
        patches = [_patch_view(item) for item in
                   region.compliance.get((instance_id, "Patch"), {}).values()]
        for flt in params.get("Filters") or []:
            key, values = flt.get("Key"), set(flt.get("Values") or [])
            field = {"Classification": "Classification", "KBId": "KBId", "Severity": "Severity",
                     "State": "State"}.get(key)
            if field is None:
                raise AwsError("InvalidFilter", f"The filter name {key} isn't valid.")
            if field == "State":
                values = {PATCH_STATES.get(v.upper(), v) for v in values}
            patches = [p for p in patches if p.get(field) in values]
        patches.sort(key=lambda p: p["KBId"])
        page, token = paginate(patches, params, default=50, maximum=100, minimum=10)
        result: dict[str, Any] = {"Patches": page}
        if token:
            result["NextToken"] = token
        return result

    def describe_group_state(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = require(params, "PatchGroup")
        rows = [s for s in self._states(ctx).values() if s.get("PatchGroup") == group]

        def having(count: str) -> int:
            return sum(1 for r in rows if r.get(count, 0) > 0)

        return {
            "Instances": len(rows),
            "InstancesWithInstalledPatches": having("InstalledCount"),
            "InstancesWithInstalledOtherPatches": having("InstalledOtherCount"),
            "InstancesWithInstalledPendingRebootPatches": having("InstalledPendingRebootCount"),
            "InstancesWithInstalledRejectedPatches": having("InstalledRejectedCount"),
            "InstancesWithMissingPatches": having("MissingCount"),
            "InstancesWithFailedPatches": having("FailedCount"),
            "InstancesWithNotApplicablePatches": having("NotApplicableCount"),
            "InstancesWithUnreportedNotApplicablePatches": having("UnreportedNotApplicableCount"),
            "InstancesWithCriticalNonCompliantPatches": having("CriticalNonCompliantCount"),
            "InstancesWithSecurityNonCompliantPatches": having("SecurityNonCompliantCount"),
            "InstancesWithOtherNonCompliantPatches": having("OtherNonCompliantCount"),
            "InstancesWithAvailableSecurityUpdates": having("AvailableSecurityUpdateCount"),
        }

    def get_snapshot(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        instance = self.hybrid.instance_for_agent(ctx, require(params, "InstanceId"))
        snapshot_id = require(params, "SnapshotId")
        os_name = baseline_os(instance)
        if os_name is None:
            raise AwsError("UnsupportedOperatingSystem", "The operating system of "
                           f"{instance.instance_id} isn't known or isn't supported.")
        region = self.baselines.region(ctx)
        group = patch_group_of(instance)
        baseline = self.baselines.applicable(region, group, os_name)
        product = (instance.info.get("PlatformName", "") +
                   instance.info.get("PlatformVersion", "")).replace(" ", "")
        token = secrets.token_urlsafe(24)
        region.snapshots[token] = {
            "snapshotId": snapshot_id,
            "instanceId": instance.instance_id,
            "patchGroup": group or "",
            "operatingSystem": os_name,
            "product": product,
            "region": ctx.region,
            "patchBaseline": self.baselines.full_view(region, baseline),
        }
        self.state.snapshot_index[token] = Location(ctx.account_id, ctx.region)
        return {
            "InstanceId": instance.instance_id,
            "SnapshotId": snapshot_id,
            "SnapshotDownloadUrl": f"{ctx.base_url}/__fleetpatch/snapshots/{token}",
            "Product": product,
        }

    def snapshot_document(self, token: str) -> dict[str, Any] | None:
        location = self.state.snapshot_index.get(token)
        return self.state.locate(location).snapshots.get(token) if location else None


def _int(value: Any) -> int:
    try:
        return max(0, int(str(value)))
    except ValueError:
        return 0


def _patch_state(instance_id: str, content: dict[str, Any]) -> dict[str, Any]:
    """AWS:PatchSummary content (all strings, as inventory items are) -> InstancePatchState."""
    operation = content.get("Operation") or content.get("OperationType") or "Scan"
    state: dict[str, Any] = {
        "InstanceId": instance_id,
        "PatchGroup": content.get("PatchGroup", ""),
        "BaselineId": content.get("BaselineId", ""),
        "Operation": "Install" if str(operation).lower() == "install" else "Scan",
        "OperationStartTime": parse_time(content.get("OperationStartTime")),
        "OperationEndTime": parse_time(content.get("OperationEndTime")),
    }
    for name in ("SnapshotId", "OwnerInformation", "InstallOverrideList", "RebootOption"):
        if content.get(name):
            state[name] = content[name]
    for name in COUNTS:
        state[name] = _int(content.get(name, 0))
    if content.get("LastNoRebootInstallOperationTime"):
        state["LastNoRebootInstallOperationTime"] = parse_time(
            content["LastNoRebootInstallOperationTime"])
    return {k: v for k, v in state.items() if v is not None}


def _patch_view(item: dict[str, Any]) -> dict[str, Any]:
    details = item.get("Details") or {}
    state = str(details.get("PatchState") or details.get("State") or "")
    view: dict[str, Any] = {
        "Title": item.get("Title", ""),
        "KBId": item["Id"],
        "Classification": details.get("Classification", ""),
        "Severity": details.get("PatchSeverity") or item.get("Severity", ""),
        "State": PATCH_STATES.get(state.upper().replace(" ", ""), state.upper() or "MISSING"),
    }
    installed = parse_time(details.get("InstalledTime"))
    if installed:
        view["InstalledTime"] = installed
    if details.get("CVEIds"):
        view["CVEIds"] = details["CVEIds"]
    return view


def _count_matches(row: dict[str, Any], flt: Any) -> bool:
    if not isinstance(flt, dict) or flt.get("Key") not in STATE_FILTER_KEYS:
        raise AwsError("InvalidFilter", "The filter name isn't valid.")
    values = flt.get("Values") or []
    if len(values) != 1 or not str(values[0]).isdigit():
        raise AwsError("InvalidFilter", "The filter value must be one non-negative integer.")
    actual, wanted = row.get(flt["Key"], 0), int(values[0])
    operator = flt.get("Type")
    if operator == "Equal":
        return actual == wanted
    if operator == "NotEqual":
        return actual != wanted
    if operator == "LessThan":
        return actual < wanted
    if operator == "GreaterThan":
        return actual > wanted
    raise AwsError("InvalidFilter", f"The filter type {operator} isn't valid.")

"""Patch baselines and patch groups: one store for every baseline operation.

moto implements a few of these with bugs (its deregister re-registers, its default baselines are
bare ids), so all of them are served here: Create/Get/Update/Delete/DescribePatchBaselines,
Register/Deregister/GetPatchBaselineForPatchGroup, DescribePatchGroups, Get/RegisterDefault-
PatchBaseline. AWS-owned default baselines exist per operating system with the real ids moto
ships for the region.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
from importlib import resources
from typing import Any

from localclouds.aws.context import RequestContext
from localclouds.aws.protocol import AwsError, paginate, require, tags_to_dict, validation
from localclouds.aws.ssm_state import Baseline, RegionState, SsmState

OPERATING_SYSTEMS = (
    "WINDOWS", "AMAZON_LINUX", "AMAZON_LINUX_2", "AMAZON_LINUX_2022", "UBUNTU",
    "REDHAT_ENTERPRISE_LINUX", "SUSE", "CENTOS", "ORACLE_LINUX", "DEBIAN", "MACOS", "RASPBIAN",
    "ROCKY_LINUX", "ALMA_LINUX", "AMAZON_LINUX_2023",
)
NO_APPROVAL_DELAY = ("UBUNTU", "DEBIAN")  # ApproveAfterDays/ApproveUntilDate unsupported
EDITABLE = (
    "GlobalFilters", "ApprovalRules", "ApprovedPatches", "ApprovedPatchesComplianceLevel",
    "ApprovedPatchesEnableNonSecurity", "RejectedPatches", "RejectedPatchesAction",
    "Description", "Sources", "AvailableSecurityUpdatesComplianceStatus",
)
_BASELINE_ID = re.compile(r"^(pb-[0-9a-f]{17}|arn:aws:ssm:[a-z0-9-]+:\d{12}:patchbaseline/pb-"
                          r"[0-9a-f]{17})$")
MAX_BASELINES = 50


def _aws_default_ids(region: str) -> dict[str, str]:
    data = resources.files("moto.ssm").joinpath("resources/default_baselines.json.gz")
    with data.open("rb") as handle:
        table = json.loads(gzip.decompress(handle.read()))
    return table.get(region) or table["us-east-1"]


class PatchBaselineService:
    def __init__(self, state: SsmState) -> None:
        self.state = state

    def handlers(self) -> dict[str, Any]:
        return {
            "CreatePatchBaseline": self.create,
            "GetPatchBaseline": self.get,
            "UpdatePatchBaseline": self.update,
            "DeletePatchBaseline": self.delete,
            "DescribePatchBaselines": self.describe,
            "RegisterPatchBaselineForPatchGroup": self.register_group,
            "DeregisterPatchBaselineForPatchGroup": self.deregister_group,
            "GetPatchBaselineForPatchGroup": self.get_for_group,
            "DescribePatchGroups": self.describe_groups,
            "GetDefaultPatchBaseline": self.get_default,
            "RegisterDefaultPatchBaseline": self.register_default,
        }

    # -- store helpers ------------------------------------------------------------------------

    def region(self, ctx: RequestContext) -> RegionState:
        region = self.state.region(ctx.account_id, ctx.region)
        if not any(b.aws_owned for b in region.baselines.values()):
            for os_name, arn in _aws_default_ids(ctx.region).items():
                name = "AWS-" + os_name.title().replace("_", "") + "DefaultPatchBaseline"
                region.baselines[arn] = Baseline(
                    baseline_id=arn, name=name, operating_system=os_name, created=ctx.now,
                    modified=ctx.now, aws_owned=True,
                    fields={"Description": f"Default patch baseline for {os_name}",
                            "ApprovalRules": _default_rules(os_name),
                            "ApprovedPatches": [], "RejectedPatches": [],
                            "ApprovedPatchesComplianceLevel": "UNSPECIFIED",
                            "RejectedPatchesAction": "ALLOW_AS_DEPENDENCY"})
        return region

    def baseline(self, region: RegionState, baseline_id: Any) -> Baseline:
        if not isinstance(baseline_id, str) or not _BASELINE_ID.match(baseline_id):
            raise AwsError("InvalidResourceId", f"Baseline id {baseline_id} is not valid.")
        baseline = region.baselines.get(baseline_id)
        if baseline is None:
            raise AwsError("DoesNotExistException",
                           f"Patch Baseline {baseline_id} does not exist.")
        return baseline

    def default_for(self, region: RegionState, operating_system: str) -> Baseline:
        chosen = region.default_baselines.get(operating_system)
        if chosen and chosen in region.baselines:
            return region.baselines[chosen]
        return next(b for b in region.baselines.values()
                    if b.aws_owned and b.operating_system == operating_system)

    def applicable(self, region: RegionState, group: str | None, os_name: str) -> Baseline:
        """The baseline an instance of ``group`` running ``os_name`` is patched with."""
        if group and (group, os_name) in region.patch_groups:
            return region.baselines[region.patch_groups[(group, os_name)]]
        return self.default_for(region, os_name)

    def full_view(self, region: RegionState, baseline: Baseline) -> dict[str, Any]:
        view: dict[str, Any] = {
            "BaselineId": baseline.baseline_id,
            "Name": baseline.name,
            "OperatingSystem": baseline.operating_system,
            "CreatedDate": baseline.created,
            "ModifiedDate": baseline.modified,
            "PatchGroups": sorted(g for (g, _), b in region.patch_groups.items()
                                  if b == baseline.baseline_id),
            "GlobalFilters": {"PatchFilters": []},
            "ApprovedPatches": [],
            "RejectedPatches": [],
        }
        view.update(baseline.fields)
        return view

    @staticmethod
    def identity(baseline: Baseline, region: RegionState) -> dict[str, Any]:
        default = region.default_baselines.get(baseline.operating_system)
        is_default = (default == baseline.baseline_id) if default else baseline.aws_owned
        return {
            "BaselineId": baseline.baseline_id,
            "BaselineName": baseline.name,
            "OperatingSystem": baseline.operating_system,
            "BaselineDescription": baseline.fields.get("Description", ""),
            "DefaultBaseline": is_default,
        }

    # -- handlers -----------------------------------------------------------------------------

    def create(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.region(ctx)
        name = require(params, "Name")
        os_name = params.get("OperatingSystem", "WINDOWS")
        if os_name not in OPERATING_SYSTEMS:
            raise validation(f"OperatingSystem {os_name} is not supported")
        fields = {key: params[key] for key in EDITABLE if key in params}
        _check_rules(os_name, fields.get("ApprovalRules"))
        if sum(1 for b in region.baselines.values() if not b.aws_owned) >= MAX_BASELINES:
            raise AwsError("ResourceLimitExceededException", "Too many patch baselines.")
        baseline = Baseline("pb-" + secrets.token_hex(9)[:17], name, os_name, ctx.now, ctx.now,
                            fields, tags=tags_to_dict(params.get("Tags")))
        region.baselines[baseline.baseline_id] = baseline
        return {"BaselineId": baseline.baseline_id}

    def get(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.region(ctx)
        return self.full_view(region, self.baseline(region, require(params, "BaselineId")))

    def update(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.region(ctx)
        baseline = self.baseline(region, require(params, "BaselineId"))
        if baseline.aws_owned:
            raise AwsError("AccessDeniedException", "AWS-owned baselines cannot be modified.")
        new_fields = {key: params[key] for key in EDITABLE if key in params}
        _check_rules(baseline.operating_system, new_fields.get("ApprovalRules"))
        baseline.fields = new_fields if params.get("Replace") else {**baseline.fields,
                                                                     **new_fields}
        if params.get("Name"):
            baseline.name = params["Name"]
        baseline.modified = ctx.now
        view = self.full_view(region, baseline)
        view.pop("PatchGroups")
        return view

    def delete(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.region(ctx)
        baseline = self.baseline(region, require(params, "BaselineId"))
        if baseline.aws_owned:
            raise AwsError("AccessDeniedException", "AWS-owned baselines cannot be deleted.")
        if baseline.baseline_id in region.patch_groups.values() or (
            baseline.baseline_id in region.default_baselines.values()
        ):
            raise AwsError("ResourceInUseException", "The baseline is registered for a patch "
                           "group or as a default baseline.")
        del region.baselines[baseline.baseline_id]
        return {"BaselineId": baseline.baseline_id}

    def describe(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.region(ctx)
        found = list(region.baselines.values())
        for flt in params.get("Filters") or []:
            key, values = flt.get("Key"), flt.get("Values") or []
            if key == "NAME_PREFIX":
                found = [b for b in found if any(b.name.startswith(v) for v in values)]
            elif key == "OWNER":
                wanted = {v.upper() for v in values}
                if "ALL" not in wanted:
                    found = [b for b in found if ("AWS" if b.aws_owned else "SELF") in wanted]
            elif key == "OPERATING_SYSTEM":
                found = [b for b in found if b.operating_system in values]
            else:
                raise validation(f"Filter key {key} is not supported")
        found.sort(key=lambda b: (b.aws_owned, b.created, b.name))
        page, token = paginate(found, params, default=50, maximum=100)
        result: dict[str, Any] = {"BaselineIdentities": [self.identity(b, region) for b in page]}
        if token:
            result["NextToken"] = token
        return result

    def register_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.region(ctx)
        baseline = self.baseline(region, require(params, "BaselineId"))
        group = require(params, "PatchGroup")
        key = (group, baseline.operating_system)
        if key in region.patch_groups:
            raise AwsError("AlreadyExistsException", f"Patch Group {group} is already "
                           f"registered with a baseline for {baseline.operating_system}.")
        region.patch_groups[key] = baseline.baseline_id
        return {"BaselineId": baseline.baseline_id, "PatchGroup": group}

    def deregister_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.region(ctx)
        baseline = self.baseline(region, require(params, "BaselineId"))
        group = require(params, "PatchGroup")
        key = (group, baseline.operating_system)
        if region.patch_groups.get(key) != baseline.baseline_id:
            raise AwsError("DoesNotExistException", f"Patch Baseline {baseline.baseline_id} "
                           f"is not registered with Patch Group {group}.")
        del region.patch_groups[key]
        return {"BaselineId": baseline.baseline_id, "PatchGroup": group}

    def get_for_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.region(ctx)
        group = require(params, "PatchGroup")
        os_name = params.get("OperatingSystem", "WINDOWS")
        if os_name not in OPERATING_SYSTEMS:
            raise validation(f"OperatingSystem {os_name} is not supported")
        baseline = self.applicable(region, group, os_name)
        return {"BaselineId": baseline.baseline_id, "PatchGroup": group,
                "OperatingSystem": os_name}

    def describe_groups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.region(ctx)
        rows = sorted(region.patch_groups.items())
        for flt in params.get("Filters") or []:
            key, values = flt.get("Key"), flt.get("Values") or []
            if key == "NAME_PREFIX":
                rows = [r for r in rows if any(r[0][0].startswith(v) for v in values)]
            elif key == "OPERATING_SYSTEM":
                rows = [r for r in rows if r[0][1] in values]
            else:
                raise validation(f"Filter key {key} is not supported")
        page, token = paginate(rows, params, default=50, maximum=100)
        result: dict[str, Any] = {"Mappings": [
            {"PatchGroup": group, "BaselineIdentity": self.identity(region.baselines[bid], region)}
            for (group, _), bid in page]}
        if token:
            result["NextToken"] = token
        return result

    def get_default(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.region(ctx)
        os_name = params.get("OperatingSystem", "WINDOWS")
        if os_name not in OPERATING_SYSTEMS:
            raise validation(f"OperatingSystem {os_name} is not supported")
        return {"BaselineId": self.default_for(region, os_name).baseline_id,
                "OperatingSystem": os_name}

    def register_default(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.region(ctx)
        baseline = self.baseline(region, require(params, "BaselineId"))
        region.default_baselines[baseline.operating_system] = baseline.baseline_id
        return {"BaselineId": baseline.baseline_id}


def _check_rules(os_name: str, rules: Any) -> None:
    """The real service refuses approval delays for Ubuntu/Debian and requires one elsewhere."""
    if rules is None:
        return
    if not isinstance(rules, dict) or not isinstance(rules.get("PatchRules", []), list):
        raise validation("ApprovalRules must contain a PatchRules list")
    for rule in rules.get("PatchRules", []):
        delayed = "ApproveAfterDays" in rule or "ApproveUntilDate" in rule
        if os_name in NO_APPROVAL_DELAY and delayed:
            raise validation(f"ApproveAfterDays and ApproveUntilDate are not supported for "
                             f"{os_name}.")
        if os_name not in NO_APPROVAL_DELAY and not delayed:
            raise validation("A patch rule must include ApproveAfterDays or ApproveUntilDate.")
        days = rule.get("ApproveAfterDays")
        if days is not None and (not isinstance(days, int) or not 0 <= days <= 360):
            raise validation("ApproveAfterDays must be between 0 and 360")


def _default_rules(os_name: str) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "PatchFilterGroup": {"PatchFilters": [
            {"Key": "CLASSIFICATION" if os_name != "UBUNTU" and os_name != "DEBIAN"
             else "PRIORITY", "Values": ["*"]}]},
        "ComplianceLevel": "UNSPECIFIED",
        "EnableNonSecurity": False,
    }
    if os_name not in NO_APPROVAL_DELAY:
        rule["ApproveAfterDays"] = 7
    return {"PatchRules": [rule]}

"""State Manager associations: enough for AWS-GatherSoftwareInventory on every managed instance.

moto has no associations, so this is the only implementation. Control side: CreateAssociation,
DescribeAssociation, ListAssociations, DeleteAssociation, DescribeInstanceAssociationsStatus.
Agent side, as the real agent pulls its associations: ListInstanceAssociations (the associations
that target the calling instance), then DescribeAssociation for the document and parameters, then
UpdateInstanceAssociationStatus with the run's result. An instance's association status follows
what its agent reported (see ``ssm_instances.association_status``).

An association's Overview (status counts over every instance it targets) is an aggregate that
SSM computes behind the scenes: here it is counted again when the region's instances were added
or removed, when the association's targets changed, or when it is older than ``OVERVIEW_FRESH``
(so an agent's reported run shows within that); otherwise the last count is answered, so the
DescribeAssociation every agent sends after its ping is not O(instances) at 10,000 instances.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from localclouds.aws.context import RequestContext
from localclouds.aws.protocol import AwsError, paginate, parse_time, require, validation
from localclouds.aws.ssm_hybrid import HybridService
from localclouds.aws.ssm_instances import targets_instance
from localclouds.aws.ssm_state import Association, RegionState, SsmState

RUN_STATUSES = {"Success", "Failed", "Pending", "InProgress"}

OPTIONAL = ("Parameters", "ScheduleExpression", "AssociationName", "DocumentVersion",
            "MaxConcurrency", "MaxErrors", "ComplianceSeverity", "ApplyOnlyAtCronInterval",
            "OutputLocation", "SyncCompliance")


OVERVIEW_FRESH = 1.0  # seconds


class AssociationService:
    def __init__(self, state: SsmState, hybrid: HybridService) -> None:
        self.state = state
        self.hybrid = hybrid
        self._overviews: dict[tuple[int, str], tuple[Any, ...]] = {}  # (id(region), association) -> cached

    def handlers(self) -> dict[str, Any]:
        return {
            "CreateAssociation": self.create,
            "DescribeAssociation": self.describe,
            "ListAssociations": self.list,
            "DeleteAssociation": self.delete,
            "DescribeInstanceAssociationsStatus": self.describe_instance_status,
            "ListInstanceAssociations": self.list_for_instance,
            "UpdateInstanceAssociationStatus": self.update_instance_status,
        }

    def _overview(self, region: RegionState, association: Association) -> dict[str, Any]:
        key = (id(region), association.association_id)
        stamp = (region, len(region.instances), json.dumps(association.targets, sort_keys=True, default=str))
        cached = self._overviews.get(key)
        if cached is not None and cached[0] is stamp[0] and cached[1:3] == stamp[1:] and (
                time.monotonic() - cached[3] < OVERVIEW_FRESH):
            return cached[4]
        overview = self._count(region, association)
        self._overviews[key] = (*stamp, time.monotonic(), overview)
        return overview

    def _count(self, region: RegionState, association: Association) -> dict[str, Any]:
        selected = [i for i in region.instances.values()
                    if not i.deregistered and targets_instance(association.targets, i)]
        counts: dict[str, int] = {}
        for instance in selected:
            run = region.association_runs.get((instance.instance_id, association.association_id))
            status = run["Status"] if run else "Pending"
            counts[status] = counts.get(status, 0) + 1
        if not selected or counts.get("Pending") or counts.get("InProgress"):
            status = "Pending"
        else:
            status = "Failed" if counts.get("Failed") else "Success"
        return {"Status": status, "DetailedStatus": status,
                "AssociationStatusAggregatedCount": counts}

    def _view(self, region: RegionState, association: Association) -> dict[str, Any]:
        view: dict[str, Any] = {
            "Name": association.name,
            "AssociationId": association.association_id,
            "AssociationVersion": "1",
            "Date": association.created,
            "LastUpdateAssociationDate": association.created,
            "Targets": association.targets,
            "DocumentVersion": "$DEFAULT",
            "Overview": self._overview(region, association),
        }
        view.update(association.fields)
        return view

    def _find(self, region: RegionState, params: dict[str, Any]) -> Association:
        association_id = params.get("AssociationId")
        if association_id:
            found = region.associations.get(association_id)
        else:
            name, instance_id = params.get("Name"), params.get("InstanceId")
            found = next((a for a in region.associations.values() if a.name == name and
                          {"Key": "InstanceIds", "Values": [instance_id]} in a.targets), None)
        if found is None:
            raise AwsError("AssociationDoesNotExist", "The specified association doesn't exist.")
        return found

    def create(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.state.region(ctx.account_id, ctx.region)
        name = require(params, "Name")
        targets = params.get("Targets") or []
        if params.get("InstanceId"):
            if targets:
                raise validation("InstanceId and Targets can't be used together.")
            targets = [{"Key": "InstanceIds", "Values": [params["InstanceId"]]}]
        if not targets or not all(isinstance(t, dict) and isinstance(t.get("Key"), str)
                                  for t in targets):
            raise validation("Targets must be specified.")
        for existing in region.associations.values():
            if existing.name == name and existing.targets == targets:
                raise AwsError("AssociationAlreadyExists",
                               "The specified association already exists.")
        association = Association(str(uuid.uuid4()), name, targets, ctx.now,
                                  {k: params[k] for k in OPTIONAL if k in params})
        region.associations[association.association_id] = association
        return {"AssociationDescription": self._view(region, association)}

    def describe(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.state.region(ctx.account_id, ctx.region)
        return {"AssociationDescription": self._view(region, self._find(region, params))}

    def list(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.state.region(ctx.account_id, ctx.region)
        found = sorted(region.associations.values(), key=lambda a: a.created)
        for flt in params.get("AssociationFilterList") or []:
            key, value = flt.get("key"), flt.get("value")
            if key == "Name":
                found = [a for a in found if a.name == value]
            elif key == "AssociationId":
                found = [a for a in found if a.association_id == value]
            elif key == "AssociationName":
                found = [a for a in found if a.fields.get("AssociationName") == value]
            elif key == "InstanceId":
                instance = region.instances.get(value or "")
                found = [a for a in found if instance and targets_instance(a.targets, instance)]
            elif key == "AssociationStatusName":
                found = [a for a in found if self._overview(region, a)["Status"] == value]
            else:
                raise validation(f"Association filter key {key} is not supported")
        page, token = paginate(found, params, default=50, maximum=50)
        rows = []
        for association in page:
            view = self._view(region, association)
            rows.append({k: view[k] for k in (
                "Name", "AssociationId", "AssociationVersion", "DocumentVersion", "Targets",
                "Overview", "ScheduleExpression", "AssociationName") if k in view})
        result: dict[str, Any] = {"Associations": rows}
        if token:
            result["NextToken"] = token
        return result

    def delete(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.state.region(ctx.account_id, ctx.region)
        association = self._find(region, params)
        del region.associations[association.association_id]
        return {}

    # -- per instance -------------------------------------------------------------------------

    def _instance_view(self, region: RegionState, association: Association,
                       instance_id: str) -> dict[str, Any]:
        run = region.association_runs.get((instance_id, association.association_id)) or {}
        view: dict[str, Any] = {
            "AssociationId": association.association_id, "Name": association.name,
            "DocumentVersion": "$DEFAULT", "AssociationVersion": "1", "InstanceId": instance_id,
            "Status": run.get("Status", "Pending"),
            "DetailedStatus": run.get("DetailedStatus", run.get("Status", "Pending")),
        }
        for name in ("ExecutionDate", "ExecutionSummary", "ErrorCode", "OutputUrl"):
            if run.get(name):
                view[name] = run[name]
        if association.fields.get("AssociationName"):
            view["AssociationName"] = association.fields["AssociationName"]
        return view

    def _targeting(self, region: RegionState, instance_id: str) -> list[Association]:
        instance = region.instances.get(instance_id)
        if instance is None or instance.deregistered:
            raise AwsError("InvalidInstanceId", f"Instance Id {instance_id} is not valid.")
        return sorted((a for a in region.associations.values()
                       if targets_instance(a.targets, instance)), key=lambda a: a.created)

    def describe_instance_status(self, ctx: RequestContext, params: dict[str, Any]
                                 ) -> dict[str, Any]:
        region = self.state.region(ctx.account_id, ctx.region)
        instance_id = require(params, "InstanceId")
        found = self._targeting(region, instance_id)
        page, token = paginate(found, params, default=50, maximum=50)
        result: dict[str, Any] = {"InstanceAssociationStatusInfos": [
            self._instance_view(region, a, instance_id) for a in page]}
        if token:
            result["NextToken"] = token
        return result

    def list_for_instance(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """Agent side: the associations the calling instance must apply."""
        instance = self.hybrid.instance_for_agent(ctx, require(params, "InstanceId"))
        region = self.state.region(ctx.account_id, ctx.region)
        found = self._targeting(region, instance.instance_id)
        page, token = paginate(found, params, default=50, maximum=50)
        result: dict[str, Any] = {"Associations": [
            {"AssociationId": a.association_id, "InstanceId": instance.instance_id,
             "AssociationVersion": "1"} for a in page]}
        if token:
            result["NextToken"] = token
        return result

    def update_instance_status(self, ctx: RequestContext, params: dict[str, Any]
                               ) -> dict[str, Any]:
        """Agent side: the result of one association run on the calling instance."""
        instance = self.hybrid.instance_for_agent(ctx, require(params, "InstanceId"))
        region = self.state.region(ctx.account_id, ctx.region)
        association = region.associations.get(require(params, "AssociationId"))
        if association is None or association not in self._targeting(region, instance.instance_id):
            raise AwsError("AssociationDoesNotExist", "The specified association doesn't exist.")
        result = require(params, "ExecutionResult", dict)
        status = result.get("Status")
        if status not in RUN_STATUSES:
            raise validation(f"ExecutionResult.Status must be one of {sorted(RUN_STATUSES)}")
        run: dict[str, Any] = {"Status": status,
                               "DetailedStatus": str(result.get("DetailedStatus") or status),
                               "ExecutionDate": parse_time(result.get("ExecutionDate")) or ctx.now}
        for name in ("ExecutionSummary", "ErrorCode", "OutputUrl"):
            if isinstance(result.get(name), str) and result[name]:
                run[name] = result[name]
        region.association_runs[(instance.instance_id, association.association_id)] = run
        return {"InstanceAssociationStatusInfo": self._instance_view(
            region, association, instance.instance_id)}

"""State Manager associations: enough for AWS-GatherSoftwareInventory on every managed instance.

moto has no associations, so this is the only implementation. An instance's association status
turns Success once its agent has uploaded inventory (see ``ssm_instances.association_status``).
"""

from __future__ import annotations

import uuid
from typing import Any

from localclouds.aws.context import RequestContext
from localclouds.aws.protocol import AwsError, paginate, require, validation
from localclouds.aws.ssm_instances import targets_instance
from localclouds.aws.ssm_state import Association, RegionState, SsmState

OPTIONAL = ("Parameters", "ScheduleExpression", "AssociationName", "DocumentVersion",
            "MaxConcurrency", "MaxErrors", "ComplianceSeverity", "ApplyOnlyAtCronInterval",
            "OutputLocation", "SyncCompliance")


class AssociationService:
    def __init__(self, state: SsmState) -> None:
        self.state = state

    def handlers(self) -> dict[str, Any]:
        return {
            "CreateAssociation": self.create,
            "DescribeAssociation": self.describe,
            "ListAssociations": self.list,
            "DeleteAssociation": self.delete,
        }

    def _overview(self, region: RegionState, association: Association) -> dict[str, Any]:
        selected = [i for i in region.instances.values()
                    if not i.deregistered and targets_instance(association.targets, i)]
        done = sum(1 for i in selected if i.last_inventory is not None)
        counts = {k: v for k, v in (("Success", done), ("Pending", len(selected) - done)) if v}
        return {"Status": "Success" if selected and done == len(selected) else "Pending",
                "DetailedStatus": "Success" if selected and done == len(selected) else "Pending",
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

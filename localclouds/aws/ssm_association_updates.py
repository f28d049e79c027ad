"""UpdateAssociation in the local AWS (moto has no associations; ``ssm_associations`` creates,
lists and deletes them). Changes the fields fleetpatch changes (schedule, parameters, name and
rate controls) and bumps the association's version, as AWS does."""

from __future__ import annotations

from typing import Any

from localclouds.aws.context import RequestContext
from localclouds.aws.protocol import AwsError, require
from localclouds.aws.ssm_state import SsmState

UPDATABLE = ("Parameters", "ScheduleExpression", "AssociationName", "DocumentVersion", "MaxConcurrency",
             "MaxErrors", "ComplianceSeverity", "ApplyOnlyAtCronInterval", "OutputLocation", "SyncCompliance")


class AssociationUpdates:
    def __init__(self, state: SsmState) -> None:
        self.state = state

    def handlers(self) -> dict[str, Any]:
        return {"UpdateAssociation": self.update}

    def update(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        association_id = require(params, "AssociationId")
        with self.state.lock:
            region = self.state.region(ctx.account_id, ctx.region)
            association = region.associations.get(association_id)
            if association is None:
                raise AwsError("AssociationDoesNotExist", "The specified association doesn't exist.")
            association.fields.update({k: params[k] for k in UPDATABLE if k in params})
            if params.get("Targets"):
                association.targets = params["Targets"]
            version = int(association.fields.get("AssociationVersion", "1")) + 1
            association.fields["AssociationVersion"] = str(version)
            association.fields["LastUpdateAssociationDate"] = ctx.now
            description = {
                "Name": association.name,
                "AssociationId": association.association_id,
                "Targets": association.targets,
                "Date": association.created,
                **association.fields,
            }
        return {"AssociationDescription": description}

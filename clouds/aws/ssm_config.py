"""SSM configuration of one systems account, applied idempotently per configuration version.

Every step checks, then creates, then adopts: a retried activity finds what its earlier attempt
made. The applied version is recorded in the systems account's Parameter Store.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from clouds.aws.baselines import BaselineSpec, all_specs
from clouds.aws.errors import aws_call, error_code
from clouds.aws.sessions import AwsSessions
from contracts.enrollment import AccountRef, SsmConfigurationResult

SERVICE_ROLE = "fleetpatch-ssm-managed-instance"
INVENTORY_ASSOCIATION = "fleetpatch-inventory"
AGENT_UPDATE_ASSOCIATION = "fleetpatch-agent-update"
DEFAULT_AGENT_UPDATE_SCHEDULE = "rate(14 days)"
VERSION_PARAMETER = "/fleetpatch/ssm-configuration-version"
_MANAGED_INSTANCE_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


def service_role_trust(account_id: str) -> dict[str, Any]:
    """SSM may assume the service role only on behalf of this systems account (confused deputy)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ssm.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": f"arn:aws:ssm:*:{account_id}:*"},
            },
        }],
    }


class SsmConfigurator:
    def __init__(self, sessions: AwsSessions, agent_update_schedule: str = DEFAULT_AGENT_UPDATE_SCHEDULE) -> None:
        self._sessions = sessions
        self._agent_update_schedule = agent_update_schedule

    def _client(self, service: str, account: AccountRef) -> Any:
        return self._sessions.in_account(service, account.role_arn, account.external_id, account.region)

    def applied_version(self, account: AccountRef) -> int:
        try:
            with aws_call("ssm:GetParameter"):
                value = self._client("ssm", account).get_parameter(Name=VERSION_PARAMETER)["Parameter"]["Value"]
        except ClientError as err:
            if error_code(err) == "ParameterNotFound":
                return 0
            raise
        return int(json.loads(value)["version"])

    def apply(self, account: AccountRef, version: int) -> SsmConfigurationResult:
        role = self.ensure_service_role(account)
        baselines = self.ensure_baselines(account)
        association = self.ensure_inventory_association(account)
        agent_update = self.ensure_agent_update_association(account)
        previous = self.applied_version(account)
        with aws_call("ssm:PutParameter"):
            self._client("ssm", account).put_parameter(
                Name=VERSION_PARAMETER,
                Value=json.dumps({"version": version}),
                Type="String",
                Overwrite=True,
            )
        return SsmConfigurationResult(
            version=version,
            service_role=role,
            baselines=baselines,
            inventory_association_id=association,
            changed=previous != version,
            agent_update_association_id=agent_update,
        )

    def ensure_service_role(self, account: AccountRef) -> str:
        iam = self._client("iam", account)
        trust = json.dumps(service_role_trust(account.account_id))
        try:
            with aws_call("iam:GetRole"):
                iam.get_role(RoleName=SERVICE_ROLE)
            with aws_call("iam:UpdateAssumeRolePolicy"):  # roles made before the condition
                iam.update_assume_role_policy(RoleName=SERVICE_ROLE, PolicyDocument=trust)
        except ClientError as err:
            if error_code(err) != "NoSuchEntity":
                raise
            try:
                with aws_call("iam:CreateRole"):
                    iam.create_role(
                        RoleName=SERVICE_ROLE,
                        AssumeRolePolicyDocument=trust,
                        Description="fleetpatch: the role SSM gives hybrid managed instances",
                    )
            except ClientError as create_err:
                if error_code(create_err) != "EntityAlreadyExists":
                    raise
        with aws_call("iam:AttachRolePolicy"):
            iam.attach_role_policy(RoleName=SERVICE_ROLE, PolicyArn=_MANAGED_INSTANCE_POLICY)
        return SERVICE_ROLE

    def ensure_baselines(self, account: AccountRef) -> dict[str, str]:
        ssm = self._client("ssm", account)
        existing = self._existing_baselines(ssm)
        ids: dict[str, str] = {}
        for spec in all_specs():
            baseline_id = existing.get(spec.name)
            if baseline_id is None:
                with aws_call("ssm:CreatePatchBaseline"):
                    baseline_id = ssm.create_patch_baseline(**spec.request())["BaselineId"]
            else:
                self._update(ssm, baseline_id, spec)
            self._register(ssm, baseline_id, spec)
            ids[spec.key] = baseline_id
        return ids

    @staticmethod
    def _existing_baselines(ssm: Any) -> dict[str, str]:
        found: dict[str, str] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "Filters": [{"Key": "NAME_PREFIX", "Values": ["fleetpatch-"]}, {"Key": "OWNER", "Values": ["Self"]}],
                "MaxResults": 100,
            }
            if token:
                kwargs["NextToken"] = token
            with aws_call("ssm:DescribePatchBaselines"):
                page = ssm.describe_patch_baselines(**kwargs)
            for identity in page.get("BaselineIdentities", []):
                found.setdefault(identity["BaselineName"], identity["BaselineId"])
            token = page.get("NextToken")
            if not token:
                return found

    @staticmethod
    def _update(ssm: Any, baseline_id: str, spec: BaselineSpec) -> None:
        request = spec.request()
        request.pop("OperatingSystem")
        try:
            with aws_call("ssm:UpdatePatchBaseline"):
                ssm.update_patch_baseline(BaselineId=baseline_id, **request)
        except ClientError as err:
            # An SSM without UpdatePatchBaseline keeps the baseline as created.
            if error_code(err) not in ("NotImplementedException", "InvalidAction"):
                raise

    @staticmethod
    def _register(ssm: Any, baseline_id: str, spec: BaselineSpec) -> None:
        try:
            with aws_call("ssm:RegisterPatchBaselineForPatchGroup"):
                ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=spec.group.value)
        except ClientError as err:
            if error_code(err) != "AlreadyExistsException":
                raise

    def ensure_inventory_association(self, account: AccountRef) -> str:
        ssm = self._client("ssm", account)
        with aws_call("ssm:ListAssociations"):
            listed = ssm.list_associations(
                AssociationFilterList=[{"key": "AssociationName", "value": INVENTORY_ASSOCIATION}]
            ).get("Associations", [])
        for association in listed:
            if association.get("AssociationName") == INVENTORY_ASSOCIATION:
                return association["AssociationId"]
        with aws_call("ssm:CreateAssociation"):
            created = ssm.create_association(
                Name="AWS-GatherSoftwareInventory",
                AssociationName=INVENTORY_ASSOCIATION,
                Targets=[{"Key": "InstanceIds", "Values": ["*"]}],
                ScheduleExpression="rate(12 hours)",
                Parameters={
                    "applications": ["Enabled"],
                    "services": ["Enabled"],
                    "windowsUpdates": ["Enabled"],
                },
            )
        return created["AssociationDescription"]["AssociationId"]

    def ensure_agent_update_association(self, account: AccountRef) -> str:
        """Every managed instance's SSM agent kept current: ``AWS-UpdateSSMAgent`` on a cadence
        (settings: ``FLEETPATCH_AWS__AGENT_UPDATE_SCHEDULE``). An existing one keeps its id; a
        changed cadence is written to it."""
        ssm = self._client("ssm", account)
        with aws_call("ssm:ListAssociations"):
            listed = ssm.list_associations(
                AssociationFilterList=[{"key": "AssociationName", "value": AGENT_UPDATE_ASSOCIATION}]
            ).get("Associations", [])
        found = next((a for a in listed if a.get("AssociationName") == AGENT_UPDATE_ASSOCIATION), None)
        if found is not None:
            if found.get("ScheduleExpression") != self._agent_update_schedule:
                with aws_call("ssm:UpdateAssociation"):
                    ssm.update_association(
                        AssociationId=found["AssociationId"], ScheduleExpression=self._agent_update_schedule
                    )
            return found["AssociationId"]
        with aws_call("ssm:CreateAssociation"):
            created = ssm.create_association(
                Name="AWS-UpdateSSMAgent",
                AssociationName=AGENT_UPDATE_ASSOCIATION,
                Targets=[{"Key": "InstanceIds", "Values": ["*"]}],
                ScheduleExpression=self._agent_update_schedule,
            )
        return created["AssociationDescription"]["AssociationId"]

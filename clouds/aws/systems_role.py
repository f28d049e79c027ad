"""The least-privilege role fleetpatch acts through in each systems account.

Right after vending (or adopting) a systems account, the aws worker assumes the account's
``OrganizationAccountAccessRole`` (administrator) once to create or update the role
``FleetpatchSystemsAccess``: trusted by the management account only, allowed only the SSM, S3
and IAM actions fleetpatch calls (the same document as deploy/iam/systems-access-policy.json, a
test keeps them equal). Every later call in the account goes through that role.
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from clouds.aws.errors import aws_call, error_code
from clouds.aws.sessions import AwsSessions

ROLE_NAME = "FleetpatchSystemsAccess"
POLICY_NAME = "fleetpatch-systems-access"
_SERVICE_ROLE = "fleetpatch-ssm-managed-instance"
_MANAGED_INSTANCE_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
#: SSM actions of hybrid activations, managed instances, Run Command, patching and associations.
SSM_ACTIONS = (
    "ssm:CreateActivation", "ssm:DescribeActivations", "ssm:DeleteActivation",
    "ssm:DescribeInstanceInformation", "ssm:ListTagsForResource", "ssm:AddTagsToResource",
    "ssm:DeregisterManagedInstance",
    "ssm:SendCommand", "ssm:ListCommands", "ssm:ListCommandInvocations", "ssm:CancelCommand",
    "ssm:DescribeInstancePatchStates", "ssm:DescribeInstancePatches",
    "ssm:CreatePatchBaseline", "ssm:DescribePatchBaselines", "ssm:UpdatePatchBaseline",
    "ssm:RegisterPatchBaselineForPatchGroup",
    "ssm:ListAssociations", "ssm:CreateAssociation", "ssm:UpdateAssociation",
    # Remote access (clouds/aws/remote_access.py): the activation tier.
    "ssm:GetServiceSetting", "ssm:UpdateServiceSetting",
    # ComplianceSync (clouds/aws/ssm_estate.py): inventory and the baselines behind patch states.
    "ssm:GetInventory", "ssm:GetPatchBaseline",
)
S3_ACTIONS = (
    "s3:ListBucket", "s3:CreateBucket", "s3:PutBucketPublicAccessBlock", "s3:PutBucketPolicy",
    "s3:PutObject", "s3:GetObject",
)


def permissions_policy() -> dict[str, Any]:
    """The role's inline policy: named actions only, scoped to fleetpatch's own resources."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "SsmHybridAndPatching", "Effect": "Allow", "Action": list(SSM_ACTIONS), "Resource": "*"},
            {"Sid": "SessionManagerPreferences", "Effect": "Allow",
             "Action": ["ssm:GetDocument", "ssm:CreateDocument", "ssm:UpdateDocument", "ssm:UpdateDocumentDefaultVersion"],
             "Resource": "arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell"},
            {"Sid": "ConfigurationVersion", "Effect": "Allow",
             "Action": ["ssm:GetParameter", "ssm:PutParameter"],
             "Resource": "arn:aws:ssm:*:*:parameter/fleetpatch/*"},
            {"Sid": "ManagedInstanceServiceRole", "Effect": "Allow",
             "Action": ["iam:GetRole", "iam:CreateRole", "iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy",
                        "iam:PassRole"],
             "Resource": f"arn:aws:iam::*:role/{_SERVICE_ROLE}"},
            {"Sid": "OnlyTheManagedInstanceCorePolicy", "Effect": "Deny",
             "Action": "iam:AttachRolePolicy", "Resource": "*",
             "Condition": {"ArnNotEquals": {"iam:PolicyARN": _MANAGED_INSTANCE_POLICY}}},
            {"Sid": "PatchTrainBucket", "Effect": "Allow", "Action": list(S3_ACTIONS),
             "Resource": ["arn:aws:s3:::fleetpatch-patching-*", "arn:aws:s3:::fleetpatch-patching-*/*"]},
        ],
    }


def trust_policy(management_account_id: str) -> dict[str, Any]:
    """Only principals of the management account may assume the role (its IAM policy decides which)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{management_account_id}:root"},
            "Action": "sts:AssumeRole",
        }],
    }


class SystemsRole:
    def __init__(self, sessions: AwsSessions, role_name: str = ROLE_NAME, settle_seconds: float = 30.0) -> None:
        self._sessions = sessions
        self._role_name = role_name
        self._settle_seconds = settle_seconds

    def _management_account(self) -> str:
        with aws_call("sts:GetCallerIdentity"):
            return str(self._sessions.management("sts").get_caller_identity()["Account"])

    def ensure(self, account_id: str) -> str:
        """Create or update the role in ``account_id`` (idempotent); returns its ARN once usable."""
        iam = self._sessions.in_account("iam", self._sessions.bootstrap_role_arn_for(account_id))
        trust = json.dumps(trust_policy(self._management_account()))
        created = self._create_if_missing(iam, trust)
        if not created:
            with aws_call("iam:UpdateAssumeRolePolicy"):
                iam.update_assume_role_policy(RoleName=self._role_name, PolicyDocument=trust)
        with aws_call("iam:PutRolePolicy"):
            iam.put_role_policy(
                RoleName=self._role_name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(permissions_policy())
            )
        arn = self._sessions.role_arn_for(account_id)
        if created:
            self._wait_assumable(arn)
        return arn

    def _create_if_missing(self, iam: Any, trust: str) -> bool:
        try:
            with aws_call("iam:GetRole"):
                iam.get_role(RoleName=self._role_name)
            return False
        except ClientError as err:
            if error_code(err) != "NoSuchEntity":
                raise
        try:
            with aws_call("iam:CreateRole"):
                iam.create_role(
                    RoleName=self._role_name,
                    AssumeRolePolicyDocument=trust,
                    Description="fleetpatch: SSM, S3 and IAM actions of the aws worker in this systems account",
                    MaxSessionDuration=3600,
                )
        except ClientError as err:
            if error_code(err) != "EntityAlreadyExists":
                raise
        return True

    def _wait_assumable(self, arn: str) -> None:
        """IAM is eventually consistent: a new role may refuse AssumeRole for a few seconds."""
        deadline = time.monotonic() + self._settle_seconds
        while True:
            try:
                self._sessions.assume(arn)
                return
            except Exception:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(2)

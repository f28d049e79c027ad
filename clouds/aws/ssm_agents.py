"""SSM activations and managed instances in a systems account: the enrollment ledger.

An activation's code is returned only when it is created, so a retried "create" that finds an
activation its earlier attempt made (same idempotency key in the description) deletes it and
creates a fresh one; with a registration limit of 1, no second machine can use either.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from clouds.aws.errors import aws_call, error_code
from clouds.aws.sessions import AwsSessions
from contracts.enrollment import TAG_CLOUD_ACCOUNT, TAG_INSTANCE_KEY, AccountRef, Activation, ActivationCheck, ManagedInstance
from contracts.reconcile import ManagedNode, PendingActivation

_DESCRIPTION_PREFIX = "fleetpatch "


class SsmAgents:
    def __init__(self, sessions: AwsSessions) -> None:
        self._sessions = sessions

    def _ssm(self, account: AccountRef) -> Any:
        return self._sessions.in_account("ssm", account.role_arn, account.external_id, account.region)

    # --- activations ---------------------------------------------------------------------

    def create_activation(
        self,
        account: AccountRef,
        *,
        service_role: str,
        default_instance_name: str,
        idempotency_key: str,
        tags: dict[str, str],
        expiry: timedelta,
        now: datetime | None = None,
    ) -> Activation:
        ssm = self._ssm(account)
        description = _DESCRIPTION_PREFIX + idempotency_key
        for stale in self._activations_with(ssm, service_role, description):
            self._delete(ssm, stale)
        expires = (now or datetime.now(UTC)) + expiry
        with aws_call("ssm:CreateActivation"):
            created = ssm.create_activation(
                Description=description,
                DefaultInstanceName=default_instance_name[:256],
                IamRole=service_role,
                RegistrationLimit=1,
                ExpirationDate=expires,
                Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
            )
        return Activation(id=created["ActivationId"], code=created["ActivationCode"], region=account.region)

    def _activations_with(self, ssm: Any, service_role: str, description: str) -> list[str]:
        found: list[str] = []
        with aws_call("ssm:DescribeActivations"):
            pages = ssm.get_paginator("describe_activations").paginate(
                Filters=[{"FilterKey": "IamRole", "FilterValues": [service_role]}]
            )
            for page in pages:
                found += [a["ActivationId"] for a in page["ActivationList"] if a.get("Description") == description]
        return found

    def check_activation(self, account: AccountRef, activation_id: str) -> ActivationCheck:
        """Whether a VM can still register with ``activation_id`` (deleted: it no longer exists)."""
        with aws_call("ssm:DescribeActivations"):
            listed = self._ssm(account).describe_activations(
                Filters=[{"FilterKey": "ActivationIds", "FilterValues": [activation_id]}]
            ).get("ActivationList", [])
        if not listed:
            return ActivationCheck(exists=False)
        item = listed[0]
        used = int(item.get("RegistrationsCount", 0)) >= int(item.get("RegistrationLimit", 1))
        return ActivationCheck(exists=True, expired=bool(item.get("Expired", False)), used=used)

    def delete_activation(self, account: AccountRef, activation_id: str) -> None:
        self._delete(self._ssm(account), activation_id)

    @staticmethod
    def _delete(ssm: Any, activation_id: str) -> None:
        try:
            with aws_call("ssm:DeleteActivation"):
                ssm.delete_activation(ActivationId=activation_id)
        except ClientError as err:
            if error_code(err) not in ("InvalidActivationId", "InvalidActivation"):
                raise

    # --- managed instances ---------------------------------------------------------------

    def find(
        self,
        account: AccountRef,
        *,
        activation_id: str | None = None,
        instance_key: str | None = None,
        instance_id: str | None = None,
    ) -> ManagedInstance | None:
        filters: list[dict[str, Any]] = []
        if activation_id:
            filters.append({"Key": "ActivationIds", "Values": [activation_id]})
        if instance_key:
            filters.append({"Key": f"tag:{TAG_INSTANCE_KEY}", "Values": [instance_key]})
        if instance_id:
            filters.append({"Key": "InstanceIds", "Values": [instance_id]})
        if not filters:
            raise ValueError("find a managed instance by activation, instance key or instance id")
        ssm = self._ssm(account)
        with aws_call("ssm:DescribeInstanceInformation"):
            listed = ssm.describe_instance_information(Filters=filters).get("InstanceInformationList", [])
        if not listed:
            return None
        # The newest registration wins if an instance registered more than once.
        info = max(listed, key=lambda i: str(i.get("RegistrationDate", "")))
        resource_type = "ManagedInstance" if info["InstanceId"].startswith("mi-") else "EC2Instance"
        return ManagedInstance(
            instance_id=info["InstanceId"],
            ping_status=info.get("PingStatus", "Unknown"),
            tags=self.tags(account, info["InstanceId"], resource_type),
            activation_id=info.get("ActivationId"),
            platform=info.get("PlatformName"),
        )

    def tags(self, account: AccountRef, instance_id: str, resource_type: str = "ManagedInstance") -> dict[str, str]:
        if resource_type != "ManagedInstance":
            return {}  # EC2 instances carry their tags in EC2, read by the ec2 worker
        with aws_call("ssm:ListTagsForResource"):
            listed = self._ssm(account).list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance_id)
        return {t["Key"]: t["Value"] for t in listed.get("TagList", [])}

    def tag(self, account: AccountRef, instance_id: str, tags: dict[str, str]) -> None:
        with aws_call("ssm:AddTagsToResource"):
            self._ssm(account).add_tags_to_resource(
                ResourceType="ManagedInstance",
                ResourceId=instance_id,
                Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
            )

    def deregister(self, account: AccountRef, instance_id: str) -> None:
        with aws_call("ssm:DeregisterManagedInstance"):
            self._ssm(account).deregister_managed_instance(InstanceId=instance_id)

    # --- reconcile -----------------------------------------------------------------------

    def nodes_of(self, account: AccountRef, cloud_account: str) -> list[ManagedNode]:
        """Every managed instance fleetpatch enrolled from ``cloud_account`` (by its tag)."""
        ssm = self._ssm(account)
        rows: list[dict[str, Any]] = []
        with aws_call("ssm:DescribeInstanceInformation"):
            pages = ssm.get_paginator("describe_instance_information").paginate(
                Filters=[{"Key": f"tag:{TAG_CLOUD_ACCOUNT}", "Values": [cloud_account]}]
            )
            for page in pages:
                rows += page.get("InstanceInformationList", [])
        nodes: list[ManagedNode] = []
        for row in rows:
            tags = self.tags(account, row["InstanceId"])
            registered = row.get("RegistrationDate")
            nodes.append(ManagedNode(
                instance_id=row["InstanceId"],
                instance_key=tags.get(TAG_INSTANCE_KEY, ""),
                ping_status=row.get("PingStatus", "Unknown"),
                registered_at=registered.isoformat() if isinstance(registered, datetime) else str(registered or ""),
                tags=tags,
                activation_id=row.get("ActivationId"),
            ))
        return [n for n in nodes if n.instance_key]

    def pending_activations(self, account: AccountRef, cloud_account: str) -> list[PendingActivation]:
        """Activations fleetpatch made for VMs of ``cloud_account`` that still exist."""
        found: list[PendingActivation] = []
        with aws_call("ssm:DescribeActivations"):
            for page in self._ssm(account).get_paginator("describe_activations").paginate():
                for item in page.get("ActivationList", []):
                    tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
                    if not str(item.get("Description", "")).startswith(_DESCRIPTION_PREFIX):
                        continue
                    if tags.get(TAG_CLOUD_ACCOUNT) != cloud_account or not tags.get(TAG_INSTANCE_KEY):
                        continue
                    found.append(PendingActivation(
                        activation_id=item["ActivationId"], instance_key=tags[TAG_INSTANCE_KEY],
                        expired=bool(item.get("Expired", False)),
                    ))
        return found

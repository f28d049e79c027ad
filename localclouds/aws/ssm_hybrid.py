"""SSM hybrid activations and managed instances, control side and agent side.

Control side: CreateActivation, DescribeActivations, DeleteActivation, DeregisterManagedInstance.
Agent side: RegisterManagedInstance (unsigned), RequestManagedInstanceRoleToken (RSA-signed with
the instance key), UpdateInstanceInformation (the agent's health ping, signed with the role
credentials). Instance listing lives in ``ssm_instances``.
"""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from localclouds.aws import auth
from localclouds.aws.context import RequestContext
from localclouds.aws.protocol import (
    AwsError,
    dict_to_tags,
    paginate,
    parse_time,
    require,
    string_list,
    tags_to_dict,
    validation,
)
from localclouds.aws.ssm_ec2 import Ec2Nodes, is_ec2_id
from localclouds.aws.ssm_state import Activation, Location, ManagedInstance, SsmState

DEFAULT_EXPIRY = timedelta(hours=24)
MAX_EXPIRY = timedelta(days=30)
ROLE_TOKEN_LIFETIME = timedelta(hours=1)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
INFO_FIELDS = (
    "AgentVersion", "AgentName", "PlatformName", "PlatformType", "PlatformVersion",
    "ComputerName", "IPAddress", "AvailabilityZone", "AvailabilityZoneId",
)


def new_instance_id() -> str:
    return "mi-" + secrets.token_hex(9)[:17]


class HybridService:
    """Activations and the managed-instance lifecycle."""

    def __init__(self, state: SsmState,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.state = state
        # Signature freshness is judged against real time: agents sign with their own clock,
        # which the emulator's movable clock must not make look stale.
        self.wall_clock = wall_clock
        self.ec2 = Ec2Nodes(state)

    def handlers(self) -> dict[str, Any]:
        return {
            "CreateActivation": self.create_activation,
            "DescribeActivations": self.describe_activations,
            "DeleteActivation": self.delete_activation,
            "DeregisterManagedInstance": self.deregister_managed_instance,
            "RegisterManagedInstance": self.register_managed_instance,
            "RequestManagedInstanceRoleToken": self.request_role_token,
            "UpdateInstanceInformation": self.update_instance_information,
        }

    # -- control side -------------------------------------------------------------------------

    def create_activation(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        role = require(params, "IamRole")
        limit = params.get("RegistrationLimit", 1)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise validation("RegistrationLimit must be between 1 and 1000")
        expiration = ctx.now + DEFAULT_EXPIRY
        if params.get("ExpirationDate") is not None:
            parsed = parse_time(params["ExpirationDate"])
            if parsed is None:
                raise validation("ExpirationDate is not a valid timestamp")
            if parsed <= ctx.now:
                raise validation("ExpirationDate must be in the future")
            if parsed - ctx.now > MAX_EXPIRY:
                raise validation("ExpirationDate cannot be more than 30 days in the future")
            expiration = parsed
        activation = Activation(
            activation_id=str(uuid.uuid4()),
            code="".join(secrets.choice(_CODE_ALPHABET) for _ in range(20)),
            iam_role=role,
            registration_limit=limit,
            expiration=expiration,
            created=ctx.now,
            description=params.get("Description"),
            default_instance_name=params.get("DefaultInstanceName"),
            tags=tags_to_dict(params.get("Tags")),
        )
        region = self.state.region(ctx.account_id, ctx.region)
        region.activations[activation.activation_id] = activation
        self.state.activation_index[activation.activation_id] = Location(ctx.account_id, ctx.region)
        return {"ActivationId": activation.activation_id, "ActivationCode": activation.code}

    def describe_activations(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        region = self.state.region(ctx.account_id, ctx.region)
        found = [a for a in region.activations.values() if not a.deleted]
        for flt in params.get("Filters") or []:
            key = flt.get("FilterKey")
            values = string_list(flt.get("FilterValues"), "FilterValues")
            if key == "ActivationIds":
                found = [a for a in found if a.activation_id in values]
            elif key == "DefaultInstanceName":
                found = [a for a in found if a.default_instance_name in values]
            elif key == "IamRole":
                found = [a for a in found if a.iam_role in values]
            else:
                raise AwsError("InvalidFilter", f"The filter key {key} isn't valid.")
        found.sort(key=lambda a: a.created)
        page, token = paginate(found, params, default=50, maximum=50)
        result: dict[str, Any] = {"ActivationList": [self._describe(a, ctx) for a in page]}
        if token:
            result["NextToken"] = token
        return result

    @staticmethod
    def _describe(activation: Activation, ctx: RequestContext) -> dict[str, Any]:
        item: dict[str, Any] = {
            "ActivationId": activation.activation_id,
            "IamRole": activation.iam_role,
            "RegistrationLimit": activation.registration_limit,
            "RegistrationsCount": activation.registrations,
            "ExpirationDate": activation.expiration,
            "Expired": activation.expiration <= ctx.now,
            "CreatedDate": activation.created,
            "Tags": dict_to_tags(activation.tags),
        }
        if activation.description is not None:
            item["Description"] = activation.description
        if activation.default_instance_name is not None:
            item["DefaultInstanceName"] = activation.default_instance_name
        return item

    def delete_activation(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        activation_id = require(params, "ActivationId")
        region = self.state.region(ctx.account_id, ctx.region)
        activation = region.activations.get(activation_id)
        if activation is None:
            raise AwsError("InvalidActivationId", "The activation ID isn't valid.")
        if activation.deleted:
            raise AwsError("InvalidActivation", "The activation has been deleted.")
        activation.deleted = True
        return {}

    def deregister_managed_instance(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        instance_id = require(params, "InstanceId")
        region = self.state.region(ctx.account_id, ctx.region)
        instance = region.instances.get(instance_id)
        if instance is None or instance.deregistered:
            raise AwsError("InvalidInstanceId", f"Instance Id {instance_id} is not valid.")
        instance.deregistered = True
        for key, owner in list(self.state.instance_keys.items()):
            if owner == instance_id:
                del self.state.instance_keys[key]
        return {}

    # -- agent side ---------------------------------------------------------------------------

    def register_managed_instance(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        activation_id = require(params, "ActivationId")
        code = require(params, "ActivationCode")
        fingerprint = require(params, "Fingerprint")
        if params.get("PublicKeyType", "Rsa") != "Rsa":
            raise validation("PublicKeyType must be Rsa")
        public_key = auth.load_public_key(params.get("PublicKey"))
        location = self.state.activation_index.get(activation_id)
        if not _UUID.match(activation_id) or location is None:
            raise AwsError("InvalidActivationId", "The activation ID isn't valid. Verify that "
                           "you entered the correct ActivationId or ActivationCode and try again.")
        region = self.state.locate(location)
        activation = region.activations[activation_id]
        if activation.deleted or not hmac.compare_digest(activation.code, code):
            raise AwsError("InvalidActivation", "The activation isn't valid. The activation "
                           "might have been deleted, or the ActivationId and the ActivationCode "
                           "don't match.")
        if activation.expiration <= ctx.now:
            raise AwsError("ActivationExpired", "The activation has expired.")
        if activation.registrations >= activation.registration_limit:
            raise AwsError("InvalidActivation", "The activation has reached its registration "
                           f"limit of {activation.registration_limit}.")
        activation.registrations += 1
        instance = ManagedInstance(
            instance_id=new_instance_id(),
            activation_id=activation_id,
            iam_role=activation.iam_role,
            registered=ctx.now,
            public_key=public_key,
            fingerprint=fingerprint,
            name=activation.default_instance_name,
            tags=dict(activation.tags),
        )
        region.instances[instance.instance_id] = instance
        self.state.instance_index[instance.instance_id] = location
        return {"InstanceId": instance.instance_id}

    def request_role_token(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """Simplified like this: the RSA signature proves the instance; the role is not assumed,
        the credentials simply belong to the systems account (moto has no IAM enforcement)."""
        instance_id = auth.rsa_signer_id(ctx.environ)
        location = self.state.instance_index.get(instance_id)
        instance = self.state.locate(location).instances.get(instance_id) if location else None
        if instance is None or instance.deregistered or instance.public_key is None:
            raise AwsError("InvalidInstanceId", f"Not existing InstanceId {instance_id}")
        auth.verify_rsa_request(ctx.environ, ctx.body, instance.public_key, self.wall_clock())
        fingerprint = require(params, "Fingerprint")
        if not hmac.compare_digest(fingerprint, instance.fingerprint):
            raise AwsError("MachineFingerprintDoesNotMatch", "Fingerprint does not match")
        access_key, secret = auth.issue_temporary_credentials(location.account_id)  # type: ignore[union-attr]
        self.state.instance_keys[access_key] = instance_id
        return {
            "AccessKeyId": access_key,
            "SecretAccessKey": secret,
            "SessionToken": secrets.token_urlsafe(96),
            "TokenExpirationDate": ctx.now + ROLE_TOKEN_LIFETIME,
            "UpdateKeyPair": False,
        }

    def update_instance_information(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        instance_id = require(params, "InstanceId")
        if is_ec2_id(instance_id):  # an EC2 instance's agent: no activation, instance credentials
            instance = self.ec2.node_for_ping(ctx, instance_id)
        else:
            instance = self.instance_for_agent(ctx, instance_id)
        instance.last_ping = ctx.now
        for name in INFO_FIELDS:
            if isinstance(params.get(name), str):
                instance.info[name] = params[name]
        return {}

    def instance_for_agent(self, ctx: RequestContext, instance_id: str) -> ManagedInstance:
        """The caller's own managed instance; an agent's key may act only for its instance."""
        region = self.state.region(ctx.account_id, ctx.region)
        instance = region.instances.get(instance_id)
        if instance is None or instance.deregistered:
            raise AwsError("InvalidInstanceId", f"Instance Id {instance_id} is not valid.")
        bound = self.state.instance_keys.get(ctx.caller.access_key or "")
        if bound is not None and bound != instance_id:
            raise AwsError("AccessDeniedException",
                           f"The credentials of {bound} cannot act for {instance_id}.")
        return instance

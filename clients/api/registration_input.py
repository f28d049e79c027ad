"""Shape checks for VM registrations: size, strict JSON, per-provider identity fields.

The API checks shape only. Signatures, claims and tenants are verified in the EnrollVm workflow
on each provider's worker; here the identity is merely read (unverified) to name the workflow.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from clouds.azure.verify import peek_azure_instance_key
from clouds.ec2.verify import peek_ec2_instance_key
from clouds.gcp.verify import peek_gcp_instance_key
from clouds.vmware.token import peek_vcenter_token
from contracts import strict_json
from contracts.errors import ErrorType, IdentityRefused
from contracts.identity import instance_key
from contracts.providers import OsFamily, Provider

_B64ISH = r"^[A-Za-z0-9+/=_\-.\s]+$"
Blob = Annotated[str, StringConstraints(min_length=1, max_length=32 * 1024, pattern=_B64ISH)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Hostname = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.\-_]*[A-Za-z0-9])?$")]


_SAFE_KEY = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Platform(_Strict):
    os: OsFamily
    version: Annotated[str, StringConstraints(max_length=64)] = ""


class GcpIdentity(_Strict):
    token: Blob


class AttestedDocument(_Strict):
    encoding: Literal["pkcs7"]
    signature: Blob


class AzureIdentity(_Strict):
    attested: AttestedDocument
    nonce: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9]+$")]
    resource_id: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class AwsIdentity(_Strict):
    rsa2048: Blob


class VmwareIdentity(_Strict):
    token: Blob
    bios_uuid: Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}$")]


_IDENTITY_MODELS: dict[Provider, type[_Strict]] = {
    Provider.GCP: GcpIdentity,
    Provider.AZURE: AzureIdentity,
    Provider.AWS: AwsIdentity,
    Provider.VMWARE: VmwareIdentity,
}


class RegistrationRequest(_Strict):
    """``POST /v1/registrations``."""

    provider: Provider
    identity: dict[str, Any]
    hostname: Hostname
    platform: Platform


class BadRequest(Exception):
    def __init__(self, reason: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details or []


class TooLarge(Exception):
    pass


def parse_json(body: bytes, limit: int) -> Any:
    if len(body) > limit:
        raise TooLarge(f"the body is over {limit} bytes")
    try:
        return strict_json.loads(body)
    except strict_json.StrictJsonError as err:
        raise BadRequest(f"the body is {err}") from None


def _details(err: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in err.errors(include_url=False)]


def validate(raw: Any) -> tuple[RegistrationRequest, _Strict]:
    """The request and its provider's identity model; BadRequest for any shape problem."""
    try:
        request = RegistrationRequest.model_validate(raw)
    except ValidationError as err:
        raise BadRequest("malformed registration", _details(err)) from None
    try:
        identity = _IDENTITY_MODELS[request.provider].model_validate(request.identity)
    except ValidationError as err:
        raise BadRequest(f"malformed {request.provider.value} identity", _details(err)) from None
    return request, identity


def claimed_instance_key(provider: Provider, identity: _Strict) -> str:
    """``{cloud account}/{instance id}`` as the unverified identity states it (names the workflow).

    The workflow refuses the enrollment unless the verified identity names the same key.
    Raises IdentityRefused for an identity that cannot even be read.
    """
    if isinstance(identity, GcpIdentity):
        account, instance = peek_gcp_instance_key(identity.token)
    elif isinstance(identity, AzureIdentity):
        account, instance = peek_azure_instance_key(identity.attested.model_dump(), identity.resource_id)
    elif isinstance(identity, AwsIdentity):
        account, instance = peek_ec2_instance_key({"rsa2048": identity.rsa2048})
    elif isinstance(identity, VmwareIdentity):
        account, instance = peek_vcenter_token(identity.token)
    else:  # pragma: no cover - the models above are exhaustive
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, f"no identity reader for {provider}")
    if not account or not instance or not _SAFE_KEY.match(account) or not _SAFE_KEY.match(instance):
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "the identity names no usable account/instance")
    return instance_key(account, instance)


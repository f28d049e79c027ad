"""Shape checks for VM registrations: size, strict JSON, one schema per provider's identity.

Here the identity is only read (unverified) for its claimed key; ``clients.api.proof`` then verifies
its signature and claims before any workflow is named, and the EnrollVm workflow verifies again on
the provider's worker (with the live checks only that worker can make) and checks the tenant.
``RegistrationRequest`` is a union discriminated by ``provider``: the OpenAPI document publishes
exactly the schema this module validates with.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from clients.api.errors import BadInput, field_errors
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


Identity = GcpIdentity | AzureIdentity | AwsIdentity | VmwareIdentity


class _Registration(_Strict):
    hostname: Hostname
    platform: Platform

    @property
    def cloud(self) -> Provider:
        return Provider(getattr(self, "provider"))


class GcpRegistration(_Registration):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [
        {"provider": "gcp", "identity": {"token": "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln"},
         "hostname": "web-1", "platform": {"os": "ubuntu", "version": "22.04"}}]})

    provider: Literal["gcp"]
    identity: GcpIdentity


class AzureRegistration(_Registration):
    provider: Literal["azure"]
    identity: AzureIdentity


class AwsRegistration(_Registration):
    provider: Literal["aws"]
    identity: AwsIdentity


class VmwareRegistration(_Registration):
    provider: Literal["vmware"]
    identity: VmwareIdentity


Registration = Union[GcpRegistration, AzureRegistration, AwsRegistration, VmwareRegistration]  # noqa: UP007
_REQUEST = TypeAdapter(Annotated[Registration, Field(discriminator="provider")])


def registration_schemas() -> dict[str, Any]:
    """``RegistrationRequest`` and the schemas it refers to, for the OpenAPI components."""
    schema = _REQUEST.json_schema(ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = schema.pop("$defs", {})
    schema["description"] = "`POST /v1/registrations`: one identity shape per provider, chosen by `provider`."
    components["RegistrationRequest"] = schema
    return components


class TooLarge(Exception):
    pass


def parse_json(body: bytes, limit: int) -> Any:
    if len(body) > limit:
        raise TooLarge(f"the body is over {limit} bytes")
    try:
        return strict_json.loads(body)
    except strict_json.StrictJsonError as err:
        raise BadInput(f"the body is {err}") from None


def _details(err: ValidationError) -> list[dict[str, Any]]:
    return field_errors([{**e, "loc": ["body", *e["loc"]]} for e in err.errors(include_url=False)])


def validate(raw: Any) -> Registration:
    """The request with its provider's identity model; BadInput names the first bad field."""
    try:
        return _REQUEST.validate_python(raw)
    except ValidationError as err:
        details = _details(err)
        raise BadInput(f"malformed registration: {details[0]['field']}: {details[0]['msg']}", details) from None


def claimed_instance_key(identity: Identity) -> str:
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
    else:
        account, instance = peek_vcenter_token(identity.token)
    if not account or not instance or not _SAFE_KEY.match(account) or not _SAFE_KEY.match(instance):
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "the identity names no usable account/instance")
    return instance_key(account, instance)

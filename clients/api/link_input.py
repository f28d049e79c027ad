"""The body of ``POST /v1/admin/links``: one schema per provider, chosen by ``provider``.

Every rule JSON Schema can state is in the schema (account id formats, role name, time zones as one
exact pattern, PEM key shapes, window settings with their ranges), so the OpenAPI document says what
the API enforces. What a schema cannot state (a P-256 key is a point on the curve, a window's cutoff
is shorter than its duration) is checked by the validators below: a 400 naming the field.
"""

from __future__ import annotations

import zoneinfo
from typing import Annotated, Any, Literal, Union

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from clients.api.json_types import INTEGER, NUMBER, JsonBool
from contracts.enrollment import TenantLink
from contracts.patch_config import RebootOption, WindowConfigError, validate_window_config, window_config
from contracts.providers import PatchGroup, Provider
from contracts.vcenter_links import LINK_ID, name_of

#: A cloud account id of any provider, as a path segment (each provider's body is stricter): a
#: vmware link id may be ``{vcenter id}:{name}`` (a further link of a vCenter shared by customers).
ANY_ACCOUNT = LINK_ID
#: An instance key, ``{cloud account}/{instance id}``.
INSTANCE_KEY = ANY_ACCOUNT.removesuffix("$") + r"/[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
ACCOUNT_EXAMPLES = ["acme-prod", "111122223333"]
ACCOUNT_FORMATS = {
    Provider.GCP: r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$",
    Provider.AZURE: r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    Provider.AWS: r"^[0-9]{12}$",
    Provider.VMWARE: LINK_ID,
}
CUSTOMER = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"
_ROLE_NAME = r"^(?:[A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}$"
# A PEM SubjectPublicKeyInfo: Ed25519 (any 32 bytes are a key) or P-256 (the point must be on the curve).
_ED25519_PEM = r"-----BEGIN PUBLIC KEY-----\r?\nMCowBQYDK2VwAyEA[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\r?\n-----END PUBLIC KEY-----"
_P256_PEM = (r"-----BEGIN PUBLIC KEY-----\r?\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE[A-Za-z0-9+/]{28}\r?\n"
             r"[A-Za-z0-9+/]{57}[AQgw]==\r?\n-----END PUBLIC KEY-----")
PUBLIC_KEY_PEM = rf"^(?:{_ED25519_PEM}|{_P256_PEM})\r?\n?$"
#: A vCenter inventory path: names separated by '/', none empty (a folder or resource pool).
INVENTORY_PATH = r"^[A-Za-z0-9_.-][A-Za-z0-9 _.-]{0,79}(?:/[A-Za-z0-9_.-][A-Za-z0-9 _.-]{0,79}){0,15}$"
_CONCURRENCY = r"^(?:[1-9][0-9]{0,5}|[1-9][0-9]?%|100%)$"  # >= 1, or 1%-100%
_ERRORS = r"^(?:[0-9]|[1-9][0-9]{1,5}|[0-9]%|[1-9][0-9]%|100%)$"  # >= 0, or 0%-100%

#: Every IANA time zone name this host knows, as one exact pattern. Not an enum: a schema's enum is
#: a list of values to try, and schemathesis's coverage phase sent every one of the 599 names, in
#: each provider's body, as a separate link change (minutes of a bounded run); the pattern states
#: the same rule. Names hold letters, digits, '_', '-', '/' and '+' (escaped here).
TIME_ZONE = "^(?:" + "|".join(name.replace("+", r"\+") for name in sorted(zoneinfo.available_timezones())) + ")$"
TimeZone = Annotated[str, StringConstraints(pattern=TIME_ZONE), Field(
    description="an IANA time zone name (tz database), e.g. Europe/London", examples=["Europe/London"])]
Customer = Annotated[str, StringConstraints(pattern=CUSTOMER)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WindowHooks(_Strict):
    pre_install: Annotated[str, StringConstraints(min_length=1, max_length=128)] = "AWS-Noop"
    post_install: Annotated[str, StringConstraints(min_length=1, max_length=128)] = "AWS-Noop"
    on_exit: Annotated[str, StringConstraints(min_length=1, max_length=128)] = "AWS-Noop"


class WindowOverrides(_Strict):
    """Overrides of one ring's window (defaults in README "Patch windows")."""

    day_of_week: Annotated[int, Field(ge=0, le=6), INTEGER] | None = None
    days_of_month: Annotated[list[Annotated[int, Field(ge=1, le=31), INTEGER]], Field(
        min_length=2, max_length=2, description="two days of the month: the window runs on the days between them")] | None = None
    hour: Annotated[int, Field(ge=0, le=23), INTEGER] | None = None
    minute: Annotated[int, Field(ge=0, le=59), INTEGER] | None = None
    cron: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"\S")] | None = None
    duration_minutes: Annotated[int, Field(ge=30, le=1440), INTEGER] | None = None
    cutoff_minutes: Annotated[int, Field(ge=0, le=1439, description="below duration_minutes"), INTEGER] | None = None
    max_concurrency: Annotated[str, StringConstraints(pattern=_CONCURRENCY)] | None = None
    max_errors: Annotated[str, StringConstraints(pattern=_ERRORS)] | None = None
    reboot: RebootOption | None = None
    scan_first: JsonBool | None = None
    hooks: WindowHooks | None = None
    hooks_on_train: Literal["refuse", "without-hooks"] | None = None
    untrained_os: Literal["scan", "baseline"] | None = None
    success_threshold: Annotated[float, Field(ge=0.0, le=1.0), NUMBER] | None = None
    ring_scope: Literal["customer", "account"] | None = None
    ring_wait_minutes: Annotated[int, Field(ge=0, le=10080), INTEGER] | None = None

    @field_validator("days_of_month")
    @classmethod
    def _in_order(cls, value: list[int] | None) -> list[int] | None:
        return sorted(value) if value else value


class Windows(_Strict):
    early: WindowOverrides | None = None
    on_time: WindowOverrides | None = Field(default=None, alias="on-time")
    late: WindowOverrides | None = None

    def as_dict(self) -> dict[str, Any]:
        groups = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        return {group: {k: v for k, v in settings.items() if v is not None} for group, settings in groups.items()}


class _Link(_Strict):
    customer: Customer
    default_patch_group: PatchGroup = PatchGroup.ON_TIME
    time_zone: TimeZone = "UTC"
    windows: Windows = Field(default_factory=Windows)
    remote_access: JsonBool = Field(
        default=False, description="Session Manager into this account's VMs (advanced tier, sessions logged to S3)"
    )

    @field_validator("windows")
    @classmethod
    def _windows_hold(cls, value: Windows) -> Windows:
        for group, overrides in value.as_dict().items():
            try:
                validate_window_config(window_config(group, "UTC", overrides), group)
            except WindowConfigError as err:
                raise ValueError(str(err)) from None
        return value

    def to_link(self) -> TenantLink:
        data = self.model_dump(exclude={"windows", "time_zone", "provider"})
        provider = Provider(getattr(self, "provider"))
        return TenantLink(**data, provider=provider, time_zone=self.time_zone, windows=self.windows.as_dict())


class GcpLink(_Link):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"provider": "gcp", "cloud_account": "acme-prod", "customer": "ACME", "time_zone": "Europe/London",
         "windows": {"early": {"hour": 4, "max_concurrency": "25%"}}}]})

    provider: Literal["gcp"]
    cloud_account: Annotated[str, StringConstraints(pattern=ACCOUNT_FORMATS[Provider.GCP])]


class AzureLink(_Link):
    provider: Literal["azure"]
    cloud_account: Annotated[str, StringConstraints(pattern=ACCOUNT_FORMATS[Provider.AZURE], to_lower=True)]


class AwsLink(_Link):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"provider": "aws", "cloud_account": "111122223333", "customer": "ACME", "role_name": "FleetpatchAccess"}]})

    provider: Literal["aws"]
    cloud_account: Annotated[str, StringConstraints(pattern=ACCOUNT_FORMATS[Provider.AWS])]
    role_name: Annotated[str, StringConstraints(max_length=512, pattern=_ROLE_NAME)] = Field(
        description="the cross-account role fleetpatch assumes in the linked account (with its path, if any): "
        "arn:{partition}:iam::{cloud_account}:role/{role_name}"
    )
    partition: Literal["aws", "aws-cn", "aws-us-gov"] = "aws"
    external_id: Annotated[str, StringConstraints(min_length=2, max_length=1224, pattern=r"^[\w+=,.@:/-]+$")] | None = None

    @property
    def role_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.cloud_account}:role/{self.role_name}"

    def to_link(self) -> TenantLink:
        return TenantLink(
            provider=Provider.AWS, cloud_account=self.cloud_account, customer=self.customer,
            default_patch_group=self.default_patch_group, time_zone=self.time_zone, role_arn=self.role_arn,
            external_id=self.external_id, windows=self.windows.as_dict(),
        )


class VmwareLink(_Link):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"provider": "vmware", "cloud_account": "vc01:acme", "customer": "ACME", "vcenter_scope": "DC0/vm/acme",
         "vcenter_public_keys": ["-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA3CNLjSpaHDIC8zKrHSeQ3sX2ZyjbWzZ0UYbdq21d03g=\n"
                                 "-----END PUBLIC KEY-----\n"]}],
        # A further link of a shared vCenter (VCENTER:NAME) names its folder or pool: the rule
        # ``_named_link_is_scoped`` enforces, stated so the document says it.
        "anyOf": [{"properties": {"cloud_account": {"pattern": "^[^:]*$"}}},
                  {"required": ["vcenter_scope"], "properties": {"vcenter_scope": {"type": "string"}}}]})

    provider: Literal["vmware"]
    cloud_account: Annotated[str, StringConstraints(pattern=ACCOUNT_FORMATS[Provider.VMWARE])] = Field(
        examples=["vc01", "vc01:acme"],
        description="the link id: the vCenter's id (fleetpatch's connection to it), or VCENTER:NAME for a further "
        "link of a vCenter shared by several customers, which then needs vcenter_scope; links of one vCenter may not "
        "have overlapping scopes (409)",
    )
    vcenter_public_keys: list[Annotated[str, StringConstraints(pattern=PUBLIC_KEY_PEM)]] = Field(
        min_length=1, max_length=4, description="PEM public keys (Ed25519 or P-256) the vCenter's tokens are signed with"
    )
    vcenter_scope: Annotated[str, StringConstraints(max_length=255, pattern=INVENTORY_PATH)] | None = Field(
        default=None, examples=["DC0/vm/acme"], validate_default=True,
        description="a vCenter shared by several customers: this customer's folder or resource pool (inventory path, "
        "e.g. DC0/vm/acme or DC0/host/C0/Resources/acme); tokens go only to VMs inside it, and only they enroll",
    )

    @field_validator("vcenter_scope")
    @classmethod
    def _named_link_is_scoped(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and name_of(info.data.get("cloud_account") or ""):
            raise ValueError("a link VCENTER:NAME of a shared vCenter needs its folder or resource pool")
        return value

    @field_validator("vcenter_public_keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        for pem in value:
            try:
                key = load_pem_public_key(pem.encode())
            except (ValueError, TypeError):
                raise ValueError("vcenter_public_keys holds something that is not a PEM public key") from None
            if not isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
                raise ValueError("vCenter token keys are Ed25519 or P-256")
        return value


LinkBody = Annotated[Union[GcpLink, AzureLink, AwsLink, VmwareLink], Field(discriminator="provider")]  # noqa: UP007

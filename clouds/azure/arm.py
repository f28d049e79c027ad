"""A VM as Azure Resource Manager describes it: tags and state, for enrollment decisions.

:class:`AzureVms` wraps an injected factory ``(subscription_id) -> ComputeManagementClient``;
:func:`compute_client_factory` builds one from :class:`config.settings.AzureSettings` alone:
``base_url`` is ``arm_endpoint`` (None: Azure's own), ``connection_verify`` the ``ca_bundle``
when set. The local Azure cloud is only another endpoint and CA bundle; nothing else differs.

Credential: :func:`default_credential` is azure-identity's ``DefaultAzureCredential`` limited
to the sources a service uses - a service principal from ``AZURE_CLIENT_*`` variables,
workload identity (AKS), managed identity (VM, App Service, Container Apps) - with every
developer/interactive source (Azure CLI, PowerShell, azd, VS Code, browser, broker, shared
cache) excluded, so an operator's own login is never used by accident. One code path thus
serves a worker inside Azure (managed or workload identity) and outside it (service principal);
``AZURE_TOKEN_CREDENTIALS`` may pin it to one source. Locally ``IDENTITY_ENDPOINT`` /
``IDENTITY_HEADER`` point the managed-identity source at the local cloud's token endpoint
(the App Service protocol), which is configuration only.

Every azure-core failure is mapped in :func:`map_azure_error`, the one place that knows them.
"""

from __future__ import annotations

import re
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.mgmt.compute import ComputeManagementClient

from config.settings import AzureSettings
from contracts.errors import (
    ErrorType,
    FleetpatchError,
    IdentityRefused,
    InstanceRefused,
    TransientCloudError,
)
from contracts.models import VmMetadata
from contracts.providers import Provider

ComputeClientFactory = Callable[[str], ComputeManagementClient]

#: contracts has no "cloud unavailable" type; retryable failures carry this one. Change it here.
UNAVAILABLE = ErrorType.CLOUD_UNAVAILABLE

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
#: /subscriptions/{uuid}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name};
#: the fixed segments are case-insensitive (as ARM treats them), names use Azure's character sets.
RESOURCE_ID = re.compile(
    rf"^/(?i:subscriptions)/(?P<sub>{_UUID})"
    r"/(?i:resourceGroups)/(?P<rg>[-\w.()]{0,89}[-\w()])"
    r"/(?i:providers)/(?i:Microsoft\.Compute)/(?i:virtualMachines)"
    r"/(?P<name>[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9_])?)$",
    re.ASCII,
)
#: Azure's SDK retries up to 10 times with backoff by default; Temporal owns retries here.
SDK_RETRY_TOTAL = 2
CONNECTION_TIMEOUT = 10
READ_TIMEOUT = 30


class AzureAccessDenied(FleetpatchError):
    """The azure worker cannot authenticate to ARM, or may not read the VM (401/403): an
    operator must fix the worker's identity or grant it Reader on the subscription. Not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(ErrorType.CONFIGURATION_INVALID, reason)


class AzureEndpointUntrusted(FleetpatchError):
    """ARM's TLS certificate does not verify (wrong ``ca_bundle`` or endpoint). Not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(ErrorType.CONFIGURATION_INVALID, reason)


class AzureRequestRefused(FleetpatchError):
    """ARM refused a request for a reason that waiting will not fix (an unexpected 4xx)."""

    def __init__(self, reason: str) -> None:
        super().__init__(ErrorType.CONFIGURATION_INVALID, reason)


@dataclass(frozen=True)
class VmResourceId:
    """A parsed, validated ARM id of a virtual machine."""

    subscription_id: str  # lower-case UUID
    resource_group: str
    name: str

    @classmethod
    def parse(cls, resource_id: object) -> VmResourceId:
        """Parse strictly; anything but a VM's ARM id is refused as malformed."""
        if not isinstance(resource_id, str) or len(resource_id) > 512:
            raise IdentityRefused(
                ErrorType.IDENTITY_MALFORMED,
                "resource id must be a string of at most 512 characters",
            )
        match = RESOURCE_ID.fullmatch(resource_id)
        if match is None:
            raise IdentityRefused(
                ErrorType.IDENTITY_MALFORMED,
                "resource id is not /subscriptions/{uuid}/resourceGroups/{rg}/providers/"
                "Microsoft.Compute/virtualMachines/{name}",
            )
        return cls(match.group("sub").lower(), match.group("rg"), match.group("name"))


def default_credential() -> TokenCredential:
    """DefaultAzureCredential restricted to service identities (see the module docstring)."""
    from azure.identity import DefaultAzureCredential  # only the azure worker needs it

    return DefaultAzureCredential(
        exclude_cli_credential=True,
        exclude_developer_cli_credential=True,
        exclude_powershell_credential=True,
        exclude_visual_studio_code_credential=True,
        exclude_shared_token_cache_credential=True,
        exclude_interactive_browser_credential=True,
        exclude_broker_credential=True,
    )


def compute_client_factory(
    settings: AzureSettings, credential: TokenCredential | None = None
) -> ComputeClientFactory:
    """A factory of ``ComputeManagementClient`` per subscription, from settings alone."""
    cred = credential if credential is not None else default_credential()
    kwargs: dict[str, Any] = {
        "retry_total": SDK_RETRY_TOTAL,
        "connection_timeout": CONNECTION_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
    }
    if settings.arm_endpoint:
        kwargs["base_url"] = settings.arm_endpoint
    if settings.ca_bundle is not None:
        kwargs["connection_verify"] = str(settings.ca_bundle)

    def make(subscription_id: str) -> ComputeManagementClient:
        return ComputeManagementClient(cred, subscription_id, **kwargs)

    return make


def map_azure_error(exc: AzureError, what: str) -> FleetpatchError:
    """The fleetpatch error for an azure-core failure while reading ``what``.

    The caller raises it ``from exc``.
    """
    if isinstance(exc, ResourceNotFoundError):
        return InstanceRefused(ErrorType.INSTANCE_NOT_FOUND, f"{what} does not exist")
    if isinstance(exc, ClientAuthenticationError):  # 401 and credential failures alike
        return AzureAccessDenied(f"cannot authenticate to Azure Resource Manager: {_short(exc)}")
    if _caused_by(exc, ssl.SSLCertVerificationError):
        return AzureEndpointUntrusted(
            f"the TLS certificate of Azure Resource Manager does not verify: {_short(exc)}"
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return TransientCloudError(
            UNAVAILABLE, f"Azure Resource Manager unreachable reading {what}: {_short(exc)}"
        )
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        if status == 429 or status >= 500:
            return TransientCloudError(
                UNAVAILABLE, f"Azure Resource Manager answered {status} reading {what}"
            )
        if status == 403:
            return AzureAccessDenied(f"not authorized to read {what}: {_short(exc)}")
        return AzureRequestRefused(
            f"Azure Resource Manager answered {status} reading {what}: {_short(exc)}"
        )
    return TransientCloudError(UNAVAILABLE, f"Azure SDK failed reading {what}: {_short(exc)}")


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is among the causes (azure-core wraps requests wraps urllib3 wraps ssl)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 16:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        inner = getattr(current, "inner_exception", None)
        current = (
            current.__cause__
            or current.__context__
            or (inner if isinstance(inner, BaseException) else None)
        )
    return False


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).splitlines()
    return text[0][:300] if text else type(exc).__name__


def _same_uuid(a: object, b: object) -> bool:
    try:
        return uuid.UUID(str(a)) == uuid.UUID(str(b))
    except ValueError:
        return False


class AzureVms:
    """Reads VMs through ARM; one ComputeManagementClient per subscription, reused."""

    def __init__(self, client_factory: ComputeClientFactory) -> None:
        self._factory = client_factory
        self._clients: dict[str, ComputeManagementClient] = {}

    def _client(self, subscription_id: str) -> ComputeManagementClient:
        client = self._clients.get(subscription_id)
        if client is None:
            client = self._clients[subscription_id] = self._factory(subscription_id)
        return client

    def get_vm(
        self,
        resource_id: str,
        expected_vm_id: str,
        *,
        expected_subscription_id: str | None = None,
    ) -> VmMetadata:
        """The VM at ``resource_id``, which must carry the attested vmId ``expected_vm_id``.

        The resource id comes from the VM and is not signed: only ARM's answer carrying the
        attested vmId (and, when given, the attested subscription) binds it to the identity.
        """
        rid = VmResourceId.parse(resource_id)
        if expected_subscription_id is not None and not _same_uuid(
            rid.subscription_id, expected_subscription_id
        ):
            raise IdentityRefused(
                ErrorType.IDENTITY_INSTANCE_MISMATCH,
                "resource id names another subscription than the attested one",
            )
        what = f"VM {rid.name} in resource group {rid.resource_group}"
        try:
            vm = self._client(rid.subscription_id).virtual_machines.get(
                rid.resource_group, rid.name, expand="instanceView"
            )
        except AzureError as exc:
            raise map_azure_error(exc, what) from exc
        props = vm.properties
        vm_id = props.vm_id if props is not None else None
        if not _same_uuid(vm_id, expected_vm_id):
            # Never name the vmId found there: it may be another customer's VM.
            raise IdentityRefused(
                ErrorType.IDENTITY_INSTANCE_MISMATCH,
                f"{what} is not the attested VM",
            )
        return VmMetadata(
            provider=Provider.AZURE,
            cloud_account=rid.subscription_id,
            instance_id=str(uuid.UUID(str(vm_id))),
            name=vm.name or rid.name,
            labels={str(k): str(v) for k, v in (vm.tags or {}).items()},
            state=_state(props),
            region=vm.location,
        )


    def list_vms(self, subscription_id: str) -> list[VmMetadata]:
        """Every VM of the subscription (``virtualMachines.listAll``, paged by the SDK)."""
        vms: list[VmMetadata] = []
        try:
            for vm in self._client(subscription_id).virtual_machines.list_all():
                props = vm.properties
                vm_id = props.vm_id if props is not None else None
                if not vm_id:
                    continue
                vms.append(
                    VmMetadata(
                        provider=Provider.AZURE,
                        cloud_account=subscription_id,
                        instance_id=str(uuid.UUID(str(vm_id))),
                        name=vm.name or "",
                        labels={str(k): str(v) for k, v in (vm.tags or {}).items()},
                        state=_state(props),
                        region=vm.location,
                    )
                )
        except AzureError as exc:
            raise map_azure_error(exc, f"VMs of subscription {subscription_id}") from exc
        return vms


def _state(props: Any) -> str:
    """The power state (``running``, ``stopped``, ``deallocated``...) when ARM reports one,
    else the provisioning state (``Succeeded``, ``Creating``...)."""
    view = getattr(props, "instance_view", None)
    for status in getattr(view, "statuses", None) or []:
        code = getattr(status, "code", "") or ""
        if code.startswith("PowerState/"):
            return code.split("/", 1)[1]
    return str(getattr(props, "provisioning_state", None) or "unknown")

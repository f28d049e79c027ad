"""A VM as the Compute Engine API describes it: labels and status, for enrollment decisions.

:class:`GceInstances` wraps an injected ``compute_v1.InstancesClient``; :func:`instances_client`
builds one from configuration alone. Production uses Google's endpoint and Application Default
Credentials; the local GCP cloud is just another ``api_endpoint`` (``http://127.0.0.1:PORT``,
kept as is by the REST transport, which honours an explicit ``http://`` scheme) with anonymous
credentials. There is no other difference between the two.

The SDK's own retry (up to 10 minutes on 503) is switched off: a Temporal activity must fail
fast and let its retry policy decide. Every SDK failure is mapped in :mod:`clouds.gcp.errors`.
"""

from __future__ import annotations

from typing import Literal

from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import compute_v1

from clouds.gcp.errors import SDK_ERRORS, GcpAccessDenied, map_compute_error
from contracts.errors import ErrorType, IdentityRefused
from contracts.identity import VerifiedIdentity
from contracts.models import VmMetadata
from contracts.providers import Provider

CredentialsMode = Literal["default", "anonymous"]


def instances_client(
    *,
    api_endpoint: str | None = None,
    credentials: Credentials | None = None,
    credentials_mode: CredentialsMode = "default",
) -> compute_v1.InstancesClient:
    """An ``InstancesClient`` over the REST transport.

    ``api_endpoint`` None: Google's own. ``credentials`` wins when given; otherwise
    ``credentials_mode="anonymous"`` sends no credentials (the local cloud), ``"default"`` uses
    Application Default Credentials, resolved by the SDK when the client is built.
    """
    if credentials is None and credentials_mode == "anonymous":
        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    options = ClientOptions(api_endpoint=api_endpoint) if api_endpoint else None
    try:
        return compute_v1.InstancesClient(
            credentials=credentials, transport="rest", client_options=options
        )
    except auth_exceptions.DefaultCredentialsError as exc:
        raise GcpAccessDenied(
            f"no Google credentials for the Compute API (Application Default Credentials): {exc}"
        ) from exc


class GceInstances:
    """Reads instances through the Compute API, mapping every SDK failure in one place."""

    def __init__(self, client: compute_v1.InstancesClient, *, timeout: float = 30.0) -> None:
        self._client = client
        self._timeout = timeout

    def get_instance(
        self, project: str, zone: str, name_or_id: str, *, expected_id: str | None = None
    ) -> VmMetadata:
        """The instance ``name_or_id`` (the API takes either) in ``project``/``zone``.

        With ``expected_id``, refuse (IdentityInstanceMismatch) an instance whose numeric id
        differs: a VM deleted and re-created under the same name is another VM.
        """
        what = f"instance {name_or_id} in projects/{project}/zones/{zone}"
        try:
            instance = self._client.get(
                project=project,
                zone=zone,
                instance=name_or_id,
                retry=None,
                timeout=self._timeout,
            )
        except SDK_ERRORS as exc:
            raise map_compute_error(exc, what) from exc
        instance_id = str(instance.id) if instance.id else ""
        if expected_id is not None and instance_id != expected_id:
            raise IdentityRefused(
                ErrorType.IDENTITY_INSTANCE_MISMATCH,
                f"{what} has id {instance_id or 'none'}, the token names {expected_id}",
            )
        return VmMetadata(
            provider=Provider.GCP,
            cloud_account=project,
            instance_id=instance_id,
            name=instance.name,
            labels=dict(instance.labels),
            state=instance.status,
            region=_last_segment(instance.zone) or zone,
        )

    def list_vms(self, project: str) -> list[VmMetadata]:
        """Every instance of ``project`` in every zone (``instances.aggregatedList``)."""
        vms: list[VmMetadata] = []
        try:
            pages = self._client.aggregated_list(project=project, retry=None, timeout=self._timeout)
            for scope, listed in pages:
                for instance in listed.instances:
                    vms.append(
                        VmMetadata(
                            provider=Provider.GCP,
                            cloud_account=project,
                            instance_id=str(instance.id),
                            name=instance.name,
                            labels=dict(instance.labels),
                            state=instance.status,
                            region=_last_segment(instance.zone) or _last_segment(scope),
                        )
                    )
        except SDK_ERRORS as exc:
            raise map_compute_error(exc, f"instances of project {project}") from exc
        return vms

    def read_vm_metadata(self, identity: VerifiedIdentity) -> VmMetadata:
        """The VM a verified token names, looked up by its numeric id (names can be reused)."""
        if identity.provider != Provider.GCP or not identity.region:
            raise ValueError("a verified GCP identity carries its zone in region")
        return self.get_instance(
            identity.cloud_account,
            identity.region,
            identity.instance_id,
            expected_id=identity.instance_id,
        )


def _last_segment(url: str) -> str:
    """``https://.../zones/us-east1-b`` -> ``us-east1-b`` (the API answers zones as URLs)."""
    return url.rstrip("/").rsplit("/", 1)[-1] if url else ""

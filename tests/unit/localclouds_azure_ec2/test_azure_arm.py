"""Local ARM over TLS through the real azure-mgmt-compute SDK, and the product's AzureVms."""

from __future__ import annotations

import ssl
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.mgmt.compute import models as m
from cryptography.hazmat.primitives.asymmetric import rsa

from clouds.azure.arm import (
    AzureAccessDenied,
    AzureEndpointUntrusted,
    AzureVms,
    VmResourceId,
    compute_client_factory,
    map_azure_error,
)
from contracts.errors import ErrorType, IdentityRefused, InstanceRefused, TransientCloudError
from contracts.providers import Provider
from tests.unit.localclouds_azure_ec2.azure_helpers import (
    compute_client,
    create_vm,
    imds_get,
    new_subscription,
    settings_from_env,
)
from tests.unit.localclouds_azure_ec2.conftest import AzureCloud

VMS = "providers/Microsoft.Compute/virtualMachines"


def rid(sub: str, group: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/{VMS}/{name}"


def product_vms() -> AzureVms:
    return AzureVms(compute_client_factory(settings_from_env().azure))


def test_sdk_creates_a_vm_with_a_vm_id_and_without_echoing_secrets(
    azure_env: dict[str, str],
) -> None:
    sub = new_subscription()
    made = create_vm(sub, "rg-a", "web-1", tags={"rackspace-addon-patching": "true"})
    assert str(uuid.UUID(made.properties.vm_id)) == made.properties.vm_id
    assert made.properties.provisioning_state == "Succeeded"
    assert made.id == rid(sub, "rg-a", "web-1")
    assert made.type == "Microsoft.Compute/virtualMachines"
    assert made.location == "eastus"
    assert made.properties.os_profile.computer_name == "web-1"
    assert made.properties.os_profile.admin_password is None
    assert made.properties.storage_profile.os_disk.os_type == "Linux"
    again = create_vm(sub, "rg-a", "web-1", tags={"rackspace-addon-patching": "false"})
    assert again.properties.vm_id == made.properties.vm_id  # an update keeps the vmId
    assert again.tags == {"rackspace-addon-patching": "false"}


def test_product_reads_tags_state_and_location(
    azure_env: dict[str, str], azure_cloud: AzureCloud
) -> None:
    sub = new_subscription()
    tags = {"rackspace-addon-patching": "true", "rackspace-addon-patching-patchgroup": "early"}
    made = create_vm(sub, "rg-b", "db-1", tags=tags, location="westeurope", windows=True)
    meta = product_vms().get_vm(
        rid(sub, "rg-b", "db-1"), made.properties.vm_id.upper(), expected_subscription_id=sub
    )
    assert meta.provider == Provider.AZURE
    assert meta.cloud_account == sub
    assert meta.instance_id == made.properties.vm_id
    assert meta.name == "db-1"
    assert meta.labels == tags
    assert meta.state == "running"
    assert meta.region == "westeurope"
    imds = azure_cloud.imds_url(made.properties.vm_id)
    attested = "/metadata/attested/document"
    assert imds_get(imds, attested, **{"api-version": "2020-09-01"}).status_code == 200
    compute_client(sub).virtual_machines.begin_deallocate("rg-b", "db-1").result()
    assert (
        product_vms().get_vm(rid(sub, "rg-b", "db-1"), made.properties.vm_id).state == "deallocated"
    )
    assert imds_get(imds, attested, **{"api-version": "2020-09-01"}).status_code == 404  # it is off
    compute_client(sub).virtual_machines.begin_start("rg-b", "db-1").result()
    assert imds_get(imds, attested, **{"api-version": "2020-09-01"}).status_code == 200


def test_resource_ids_are_case_insensitive_where_arm_is(azure_env: dict[str, str]) -> None:
    sub = new_subscription()
    made = create_vm(sub, "rg-case", "Case-VM")
    odd = (
        f"/SUBSCRIPTIONS/{sub.upper()}/resourcegroups/RG-CASE/"
        "providers/microsoft.compute/virtualmachines/case-vm"
    )
    assert product_vms().get_vm(odd, made.properties.vm_id).name == "Case-VM"


def test_missing_vm_is_instance_not_found(azure_env: dict[str, str]) -> None:
    with pytest.raises(InstanceRefused) as refused:
        product_vms().get_vm(rid(new_subscription(), "rg-x", "ghost"), str(uuid.uuid4()))
    assert refused.value.type == ErrorType.INSTANCE_NOT_FOUND


def test_vm_id_mismatch_is_refused(azure_env: dict[str, str]) -> None:
    sub = new_subscription()
    made = create_vm(sub, "rg-c", "app-1")
    with pytest.raises(IdentityRefused) as refused:
        product_vms().get_vm(rid(sub, "rg-c", "app-1"), str(uuid.uuid4()))
    assert refused.value.type == ErrorType.IDENTITY_INSTANCE_MISMATCH
    assert made.properties.vm_id not in str(refused.value)  # never another VM's vmId


def test_an_unattested_subscription_never_reads_arm() -> None:
    from datetime import UTC, datetime

    from activities.azure import AzureActivities
    from config.settings import AzureSettings
    from contracts.identity import VerifiedIdentity
    from contracts.models import VmMetadataInput
    from contracts.providers import Provider

    class NoArm:
        def get_vm(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("ARM read by the caller's resource id")

    activities = AzureActivities(AzureSettings(), None, vms=NoArm(), trust=([], []))  # type: ignore[arg-type]
    identity = VerifiedIdentity(provider=Provider.AZURE, cloud_account="", instance_id=str(uuid.uuid4()),
                                issued_at=datetime.now(UTC), evidence={})
    with pytest.raises(IdentityRefused) as refused:
        activities.read_vm_metadata(VmMetadataInput(identity, rid(new_subscription(), "rg", "vm")))
    assert refused.value.type == ErrorType.IDENTITY_CLAIMS_MISSING


def test_subscription_mismatch_is_refused_before_any_call() -> None:
    calls: list[str] = []
    vms = AzureVms(lambda sub: calls.append(sub))  # type: ignore[arg-type,func-returns-value]
    with pytest.raises(IdentityRefused) as refused:
        vms.get_vm(
            rid(new_subscription(), "rg", "vm"),
            str(uuid.uuid4()),
            expected_subscription_id=new_subscription(),
        )
    assert refused.value.type == ErrorType.IDENTITY_INSTANCE_MISMATCH
    assert calls == []


@pytest.mark.parametrize(
    "bad",
    [
        "",
        f"/subscriptions/not-a-uuid/resourceGroups/rg/{VMS}/vm",
        f"/subscriptions/{uuid.uuid4()}/resourceGroups/rg/{VMS}",
        f"/subscriptions/{uuid.uuid4()}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/vm",
        f"/subscriptions/{uuid.uuid4()}/resourceGroups/rg/{VMS}/vm/extensions/x",
        f"/subscriptions/{uuid.uuid4()}/resourceGroups/rg/{VMS}/vm-",
        f"/subscriptions/{uuid.uuid4()}/resourceGroups/rg/{VMS}/../x",
        f"/subscriptions/{uuid.uuid4()}/resourceGroups/r g/{VMS}/vm",
        f"/subscriptions/{uuid.uuid4()}/resourceGroups/rg/{VMS}/vm\n",
        f"subscriptions/{uuid.uuid4()}/resourceGroups/rg/{VMS}/vm",
        f"/subscriptions/{uuid.uuid4()}/resourceGroups/rg/{VMS}/{'a' * 65}",
    ],
)
def test_malformed_resource_ids_are_refused(bad: str) -> None:
    with pytest.raises(IdentityRefused) as refused:
        VmResourceId.parse(bad)
    assert refused.value.type == ErrorType.IDENTITY_MALFORMED


def test_resource_id_parse_normalises_the_subscription() -> None:
    sub = str(uuid.uuid4())
    parsed = VmResourceId.parse(rid(sub.upper(), "My.Group(1)", "vm_1.a"))
    assert parsed == VmResourceId(sub, "My.Group(1)", "vm_1.a")


def test_list_by_subscription_and_group(azure_env: dict[str, str]) -> None:
    sub = new_subscription()
    create_vm(sub, "rg-l1", "a-1")
    create_vm(sub, "rg-l2", "b-1")
    client = compute_client(sub)
    assert sorted(v.name for v in client.virtual_machines.list_all()) == ["a-1", "b-1"]
    assert [v.name for v in client.virtual_machines.list("rg-l2")] == ["b-1"]
    client.virtual_machines.begin_delete("rg-l1", "a-1").result()
    assert [v.name for v in client.virtual_machines.list_all()] == ["b-1"]


def test_sdk_update_replaces_tags(azure_env: dict[str, str]) -> None:
    sub = new_subscription()
    made = create_vm(sub, "rg-u", "u-1", tags={"a": "1"})
    updated = (
        compute_client(sub)
        .virtual_machines.begin_update("rg-u", "u-1", m.VirtualMachineUpdate(tags={"b": "2"}))
        .result()
    )
    assert updated.tags == {"b": "2"} and updated.properties.vm_id == made.properties.vm_id


# --- authentication -------------------------------------------------------------------------


def _arm(env: dict[str, str], path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(
        f"{env['FLEETPATCH_AZURE__ARM_ENDPOINT']}{path}",
        params={"api-version": "2024-07-01"},
        headers=headers,
        verify=ssl.create_default_context(cafile=env["FLEETPATCH_AZURE__CA_BUNDLE"]),
    )


def _msi_token(
    env: dict[str, str], resource: str = "https://management.azure.com", header: str | None = None
) -> httpx.Response:
    return httpx.get(
        env["IDENTITY_ENDPOINT"],
        params={"api-version": "2019-08-01", "resource": resource},
        headers={"X-IDENTITY-HEADER": header if header is not None else env["IDENTITY_HEADER"]},
    )


def test_identity_endpoint_speaks_the_app_service_protocol(azure_env: dict[str, str]) -> None:
    r = _msi_token(azure_env)
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer" and body["resource"] == "https://management.azure.com"
    assert int(body["expires_on"]) > datetime.now(UTC).timestamp() + 3600
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://management.azure.com"
    assert claims["iss"].startswith("https://sts.windows.net/")
    assert _msi_token(azure_env, header="wrong").status_code == 401
    assert _msi_token(azure_env, header="").status_code == 401


def test_arm_without_or_with_a_bad_bearer_is_401(
    azure_env: dict[str, str], azure_cloud: AzureCloud
) -> None:
    path = f"/subscriptions/{new_subscription()}/providers/Microsoft.Compute/virtualMachines"
    good = _msi_token(azure_env).json()["access_token"]
    assert _arm(azure_env, path, good).status_code == 200
    missing = _arm(azure_env, path, None)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "AuthenticationFailed"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
    vault = _msi_token(azure_env, resource="https://vault.azure.net").json()["access_token"]
    wrong_aud = _arm(azure_env, path, vault)
    assert wrong_aud.status_code == 401 and "WWW-Authenticate" in wrong_aud.headers
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = jwt.encode(claims, rsa.generate_private_key(65537, 2048), algorithm="RS256")
    assert _arm(azure_env, path, forged).json()["error"]["code"] == "InvalidAuthenticationToken"
    expired = {**claims, "exp": int((datetime.now(UTC) - timedelta(hours=1)).timestamp())}
    key_file = azure_cloud.state_dir / "azure" / "private" / "token-signing.key"
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    real_key = load_pem_private_key(key_file.read_bytes(), None)
    stale = _arm(azure_env, path, jwt.encode(expired, real_key, algorithm="RS256"))
    assert (
        stale.status_code == 401 and stale.json()["error"]["code"] == "ExpiredAuthenticationToken"
    )
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert _arm(azure_env, path, unsigned).status_code == 401


class _FixedCredential:
    """A credential that hands out a token ARM will not accept."""

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken("not-a-jwt", int(datetime.now(UTC).timestamp()) + 3600)


def test_rejected_credentials_are_a_clear_non_retryable_error(azure_env: dict[str, str]) -> None:
    vms = AzureVms(compute_client_factory(settings_from_env().azure, _FixedCredential()))  # type: ignore[arg-type]
    with pytest.raises(AzureAccessDenied) as denied:
        vms.get_vm(rid(new_subscription(), "rg", "vm"), str(uuid.uuid4()))
    assert denied.value.retryable is False
    assert denied.value.type == ErrorType.CONFIGURATION_INVALID


def test_untrusted_tls_is_a_configuration_error(
    azure_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLEETPATCH_AZURE__CA_BUNDLE")  # the system CAs do not know the local ARM
    with pytest.raises(AzureEndpointUntrusted) as untrusted:
        product_vms().get_vm(rid(new_subscription(), "rg", "vm"), str(uuid.uuid4()))
    assert untrusted.value.retryable is False


@pytest.mark.parametrize(
    ("status", "transient"), [(429, True), (500, True), (503, True), (400, False), (403, False)]
)
def test_http_errors_map_by_status(status: int, transient: bool) -> None:
    exc = HttpResponseError(message="boom")
    exc.status_code = status
    mapped = map_azure_error(exc, "vm")
    assert isinstance(mapped, TransientCloudError) is transient
    assert mapped.retryable is transient


def test_network_errors_are_transient() -> None:
    assert isinstance(map_azure_error(ServiceRequestError("refused"), "vm"), TransientCloudError)


def test_describe_and_worker_env_name_the_same_files(azure_cloud: AzureCloud) -> None:
    from localclouds import azure as local_azure

    info = local_azure.describe(
        azure_cloud.state_dir, "127.0.0.1", azure_cloud.imds.port, arm_port=azure_cloud.arm_port
    )
    env = azure_cloud.env
    assert (
        info["arm"]
        == env["FLEETPATCH_AZURE__ARM_ENDPOINT"]
        == f"https://127.0.0.1:{azure_cloud.arm_port}"
    )
    assert info["imds"] == f"http://127.0.0.1:{azure_cloud.imds.port}/vm/{{name}}"
    assert info["ca_bundle"] == env["FLEETPATCH_AZURE__CA_BUNDLE"]
    assert info["roots"] == env["FLEETPATCH_AZURE__ROOTS_FILE"]
    assert info["intermediates"] == env["FLEETPATCH_AZURE__INTERMEDIATES_FILE"]
    assert info["identity_endpoint"] == env["IDENTITY_ENDPOINT"]
    for key in ("ca_bundle", "roots", "intermediates"):
        assert Path(info[key]).is_file()
    # Without arm_port, the port the running cloud recorded is used.
    assert (
        local_azure.describe(azure_cloud.state_dir, "127.0.0.1", azure_cloud.imds.port)["arm"]
        == info["arm"]
    )
    assert (
        local_azure.worker_env(azure_cloud.state_dir, "127.0.0.1", 1)["IDENTITY_HEADER"]
        == env["IDENTITY_HEADER"]
    )


def test_arm_validates_requests_like_arm(azure_env: dict[str, str]) -> None:
    token = _msi_token(azure_env).json()["access_token"]
    base = azure_env["FLEETPATCH_AZURE__ARM_ENDPOINT"]
    tls = ssl.create_default_context(cafile=azure_env["FLEETPATCH_AZURE__CA_BUNDLE"])
    auth = {"Authorization": f"Bearer {token}"}
    vm_path = f"/subscriptions/{new_subscription()}/resourceGroups/rg-v/{VMS}/v-1"

    def call(method: str, path: str, body: object = None, api: bool = True) -> httpx.Response:
        params = {"api-version": "2024-07-01"} if api else {}
        return httpx.request(
            method, f"{base}{path}", params=params, headers=auth, json=body, verify=tls
        )

    no_version = call("GET", vm_path, api=False)
    assert no_version.status_code == 400
    assert no_version.json()["error"]["code"] == "MissingApiVersionParameter"
    bad_sub = call("GET", f"/subscriptions/nope/resourceGroups/rg/{VMS}/x")
    assert bad_sub.json()["error"]["code"] == "InvalidSubscriptionId"
    assert call("PUT", vm_path, {"properties": {}}).json()["error"]["code"] == "LocationRequired"
    odd_location = call("PUT", vm_path, {"location": "East US (Stage)"})
    assert odd_location.status_code == 400
    assert call("PUT", vm_path, {"location": "eastus"}).status_code == 201
    assert call("PUT", vm_path, {"location": "eastus"}).status_code == 200
    moved = call("PUT", vm_path, {"location": "westus"})
    assert moved.status_code == 409 and moved.json()["error"]["code"] == "InvalidResourceLocation"
    assert call("GET", "/subscriptions").status_code == 404
    assert call("DELETE", vm_path).status_code == 200
    assert call("DELETE", vm_path).status_code == 204
    assert call("GET", vm_path).json()["error"]["code"] == "ResourceNotFound"


def test_product_lists_every_vm_of_a_subscription_as_changes_land(azure_env: dict[str, str]) -> None:
    """What reconcile reads: the SDK's listAll through AzureVms, after tag updates and deletes."""
    sub = new_subscription()
    kept = create_vm(sub, "rg-r1", "keep-1", tags={"rackspace-addon-patching": "true"})
    create_vm(sub, "rg-r2", "gone-1", tags={"rackspace-addon-patching": "true"})
    client = compute_client(sub)
    client.virtual_machines.begin_update(
        "rg-r1", "keep-1", m.VirtualMachineUpdate(tags={"rackspace-addon-patching-patchgroup": "late"})
    ).result()
    client.virtual_machines.begin_delete("rg-r2", "gone-1").result()
    (only,) = product_vms().list_vms(sub)
    assert only.provider == Provider.AZURE and only.cloud_account == sub
    assert only.instance_id == kept.properties.vm_id and only.name == "keep-1"
    assert only.labels == {"rackspace-addon-patching-patchgroup": "late"}
    assert product_vms().list_vms(new_subscription()) == []

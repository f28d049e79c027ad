"""The local GCP cloud over real HTTP: metadata server, JWKS, Compute REST via the real SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from clouds.gcp.compute import GceInstances, instances_client
from clouds.gcp.jwks import RemoteJwks, StaticJwks
from clouds.gcp.verify import peek_gcp_instance_key, verify_gcp_token
from contracts.errors import ErrorType, IdentityRefused, InstanceRefused
from localclouds.gcp import describe, worker_env
from localclouds.gcp.app import create_app
from tests.unit.gcp.forge import decode_segment, segments
from tests.unit.gcp.serving import serve

PROJECT = "acme-local-1"
ZONE = "us-east1-b"
AUDIENCE = "https://fleetpatch.example/v1/registrations"
IDENTITY = "/computeMetadata/v1/instance/service-accounts/default/identity"
FLAVOR = {"Metadata-Flavor": "Google"}


class Cloud:
    def __init__(self, base: str, state_dir: Path) -> None:
        self.base = base
        self.state_dir = state_dir
        self.sdk = instances_client(api_endpoint=base, credentials_mode="anonymous")

    def create_vm(self, name: str, labels: dict[str, str] | None = None) -> compute_v1.Instance:
        operation = self.sdk.insert(
            project=PROJECT,
            zone=ZONE,
            instance_resource=compute_v1.Instance(
                name=name, machine_type=f"zones/{ZONE}/machineTypes/e2-small", labels=labels or {}
            ),
        )
        operation.result(timeout=10)
        return self.sdk.get(project=PROJECT, zone=ZONE, instance=name)

    def identity(self, vm: str, **params: str) -> httpx.Response:
        query = {"audience": AUDIENCE, "format": "full", **params}
        return httpx.get(f"{self.base}/vm/{vm}{IDENTITY}", params=query, headers=FLAVOR)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    state_dir = tmp_path_factory.mktemp("state")
    with serve(create_app(state_dir)) as base:
        yield Cloud(base, state_dir)


def test_health_and_jwks(cloud: Cloud) -> None:
    assert httpx.get(f"{cloud.base}/__fleetpatch/health").status_code == 200
    answer = httpx.get(f"{cloud.base}/oauth2/v3/certs")
    assert answer.status_code == 200
    (key,) = answer.json()["keys"]
    assert {key["kty"], key["alg"], key["use"], key["e"]} == {"RSA", "RS256", "sig", "AQAB"}
    assert len(key["kid"]) == 40
    # The same JWKS on disk, for offline ``fleetpatch verify --jwks``.
    on_disk = json.loads((cloud.state_dir / "gcp" / "jwks.json").read_text())
    assert on_disk == answer.json()


def test_token_from_the_metadata_server_verifies_with_the_local_jwks_url(cloud: Cloud) -> None:
    vm = cloud.create_vm("web-1")
    answer = cloud.identity("web-1")
    assert answer.status_code == 200
    assert answer.headers["Metadata-Flavor"] == "Google"
    token = answer.text
    identity = verify_gcp_token(
        token,
        keys=RemoteJwks.for_url(f"{cloud.base}/oauth2/v3/certs"),
        audience=AUDIENCE,
        now=datetime.now(UTC),
    )
    assert (identity.cloud_account, identity.instance_id) == (PROJECT, str(vm.id))
    assert (identity.instance_name, identity.region) == ("web-1", ZONE)
    assert peek_gcp_instance_key(token) == (PROJECT, str(vm.id))


def test_token_claims_have_googles_shape(cloud: Cloud) -> None:
    cloud.create_vm("shape-1")
    header_b64, payload_b64, _ = segments(cloud.identity("shape-1", licenses="TRUE").text)
    header, claims = decode_segment(header_b64), decode_segment(payload_b64)
    assert set(header) == {"alg", "kid", "typ"} and header["alg"] == "RS256"
    assert list(claims) == sorted(claims)
    assert set(claims) == {
        "aud", "azp", "email", "email_verified", "exp", "google", "iat", "iss", "sub",
    }  # fmt: skip
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["sub"] == claims["azp"] and claims["sub"].isdigit()
    compute = claims["google"]["compute_engine"]
    assert set(compute) == {
        "instance_creation_timestamp", "instance_id", "instance_name", "license_id",
        "project_id", "project_number", "zone",
    }  # fmt: skip
    assert isinstance(compute["project_number"], int)
    assert claims["email"] == f"{compute['project_number']}-compute@developer.gserviceaccount.com"


def test_format_standard_has_no_compute_claims_and_is_refused(cloud: Cloud) -> None:
    cloud.create_vm("std-1")
    token = cloud.identity("std-1", format="standard").text
    assert "google" not in decode_segment(segments(token)[1])
    keys = StaticJwks.from_file(cloud.state_dir / "gcp" / "jwks.json")
    with pytest.raises(IdentityRefused) as refused:
        verify_gcp_token(token, keys=keys, audience=AUDIENCE, now=datetime.now(UTC))
    assert refused.value.type is ErrorType.IDENTITY_CLAIMS_MISSING


def test_token_for_another_audience_is_refused(cloud: Cloud) -> None:
    cloud.create_vm("aud-1")
    token = cloud.identity("aud-1", audience=AUDIENCE + ".evil.example").text
    keys = StaticJwks.from_file(cloud.state_dir / "gcp" / "jwks.json")
    with pytest.raises(IdentityRefused) as refused:
        verify_gcp_token(token, keys=keys, audience=AUDIENCE, now=datetime.now(UTC))
    assert refused.value.type is ErrorType.IDENTITY_AUDIENCE_MISMATCH


@pytest.mark.parametrize(
    ("vm", "headers"),
    [
        ("flavor-none", {}),
        ("flavor-lower", {"Metadata-Flavor": "google"}),
        ("flavor-proxied", {"Metadata-Flavor": "Google", "X-Forwarded-For": "10.0.0.9"}),
    ],
)
def test_metadata_server_refuses_requests_without_the_flavor_header(
    cloud: Cloud, vm: str, headers: dict[str, str]
) -> None:
    cloud.create_vm(vm)
    answer = httpx.get(
        f"{cloud.base}/vm/{vm}{IDENTITY}",
        params={"audience": AUDIENCE, "format": "full"},
        headers=headers,
    )
    assert answer.status_code == 403
    assert answer.headers["Metadata-Flavor"] == "Google"
    assert "eyJ" not in answer.text
    assert cloud.identity(vm).status_code == 200  # the same request with the header works


def test_metadata_server_needs_an_audience_and_a_known_vm(cloud: Cloud) -> None:
    no_audience = httpx.get(f"{cloud.base}/vm/web-1{IDENTITY}", headers=FLAVOR)
    assert no_audience.status_code == 400
    unknown = httpx.get(f"{cloud.base}/vm/ghost{IDENTITY}?audience=x", headers=FLAVOR)
    assert unknown.status_code == 404


def test_plain_metadata_values(cloud: Cloud) -> None:
    vm = cloud.create_vm("meta-1")
    base = f"{cloud.base}/vm/meta-1/computeMetadata/v1"

    def read(path: str) -> str:
        answer = httpx.get(base + path, headers=FLAVOR)
        assert answer.status_code == 200 and answer.headers["Metadata-Flavor"] == "Google"
        return answer.text

    assert read("/instance/id") == str(vm.id)
    assert read("/instance/name") == "meta-1"
    assert read("/project/project-id") == PROJECT
    number = read("/project/numeric-project-id")
    assert read("/instance/zone") == f"projects/{number}/zones/{ZONE}"
    assert read("/instance/hostname") == f"meta-1.{ZONE}.c.{PROJECT}.internal"
    assert httpx.get(base + "/instance/id").status_code == 403
    assert httpx.get(f"{cloud.base}/vm/absent/computeMetadata/v1/instance/name",
                     headers=FLAVOR).status_code == 404


def test_sdk_get_returns_labels_set_by_insert_and_set_labels(cloud: Cloud) -> None:
    created = cloud.create_vm("labels-1", {"rackspace-addon-patching": "false", "team": "a"})
    assert dict(created.labels) == {"rackspace-addon-patching": "false", "team": "a"}
    assert created.status == "RUNNING" and created.zone.endswith(f"/zones/{ZONE}")
    operation = cloud.sdk.set_labels(
        project=PROJECT,
        zone=ZONE,
        instance="labels-1",
        instances_set_labels_request_resource=compute_v1.InstancesSetLabelsRequest(
            labels={
                "rackspace-addon-patching": "true",
                "rackspace-addon-patching-patchgroup": "early",
            },
            label_fingerprint=created.label_fingerprint,
        ),
    )
    operation.result(timeout=10)
    metadata = GceInstances(cloud.sdk).get_instance(PROJECT, ZONE, "labels-1")
    assert metadata.labels == {
        "rackspace-addon-patching": "true",
        "rackspace-addon-patching-patchgroup": "early",
    }
    assert (metadata.instance_id, metadata.state, metadata.region) == (
        str(created.id),
        "RUNNING",
        ZONE,
    )


def test_set_labels_with_a_stale_fingerprint_is_refused(cloud: Cloud) -> None:
    created = cloud.create_vm("labels-2", {"a": "1"})
    request = compute_v1.InstancesSetLabelsRequest(labels={"a": "2"}, label_fingerprint="c3RhbGU=")
    with pytest.raises(api_exceptions.PreconditionFailed):
        cloud.sdk.set_labels(
            project=PROJECT, zone=ZONE, instance="labels-2",
            instances_set_labels_request_resource=request,
        )  # fmt: skip
    assert dict(cloud.sdk.get(project=PROJECT, zone=ZONE, instance=str(created.id)).labels) == {
        "a": "1"
    }


def test_read_vm_metadata_of_a_verified_token(cloud: Cloud) -> None:
    cloud.create_vm("verified-1", {"rackspace-addon-patching": "true"})
    keys = StaticJwks.from_file(cloud.state_dir / "gcp" / "jwks.json")
    identity = verify_gcp_token(
        cloud.identity("verified-1").text, keys=keys, audience=AUDIENCE, now=datetime.now(UTC)
    )
    metadata = GceInstances(cloud.sdk).read_vm_metadata(identity)
    assert metadata.name == "verified-1"
    assert metadata.labels == {"rackspace-addon-patching": "true"}


def test_deleted_vm_is_not_found_and_a_recreated_one_is_another_vm(cloud: Cloud) -> None:
    old = cloud.create_vm("reused-1")
    keys = StaticJwks.from_file(cloud.state_dir / "gcp" / "jwks.json")
    identity = verify_gcp_token(
        cloud.identity("reused-1").text, keys=keys, audience=AUDIENCE, now=datetime.now(UTC)
    )
    cloud.sdk.delete(project=PROJECT, zone=ZONE, instance="reused-1").result(timeout=10)
    instances = GceInstances(cloud.sdk)
    with pytest.raises(InstanceRefused) as gone:
        instances.read_vm_metadata(identity)
    assert gone.value.type is ErrorType.INSTANCE_NOT_FOUND
    new = cloud.create_vm("reused-1")
    assert new.id != old.id
    with pytest.raises(IdentityRefused) as mismatch:
        instances.get_instance(PROJECT, ZONE, "reused-1", expected_id=identity.instance_id)
    assert mismatch.value.type is ErrorType.IDENTITY_INSTANCE_MISMATCH


def test_insert_refuses_duplicates_and_bad_names(cloud: Cloud) -> None:
    cloud.create_vm("dup-1")
    with pytest.raises(api_exceptions.Conflict):
        cloud.create_vm("dup-1")
    with pytest.raises(api_exceptions.BadRequest):
        cloud.create_vm("Not_A_Name")


def test_list_and_operations(cloud: Cloud) -> None:
    cloud.create_vm("listed-1")
    names = {i.name for i in cloud.sdk.list(project=PROJECT, zone=ZONE)}
    assert "listed-1" in names
    operation = cloud.sdk.set_labels(
        project=PROJECT,
        zone=ZONE,
        instance="listed-1",
        instances_set_labels_request_resource=compute_v1.InstancesSetLabelsRequest(
            labels={}, label_fingerprint=cloud.sdk.get(
                project=PROJECT, zone=ZONE, instance="listed-1").label_fingerprint,
        ),
    )  # fmt: skip
    ops = compute_v1.ZoneOperationsClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": cloud.base},
    )
    fetched = ops.get(project=PROJECT, zone=ZONE, operation=operation.name)
    assert fetched.status == compute_v1.Operation.Status.DONE
    assert fetched.operation_type == "setLabels"


def test_restart_keeps_vms_and_key(tmp_path: Path) -> None:
    with serve(create_app(tmp_path)) as base:
        first = Cloud(base, tmp_path)
        vm = first.create_vm("persisted-1", {"k": "v"})
        jwks_before = httpx.get(f"{base}/oauth2/v3/certs").json()
        token_before = first.identity("persisted-1").text
    assert (tmp_path / "gcp" / "instances.json").exists()
    assert (tmp_path / "gcp" / "signing-key.pem").stat().st_mode & 0o077 == 0
    with serve(create_app(tmp_path)) as base:
        second = Cloud(base, tmp_path)
        again = second.sdk.get(project=PROJECT, zone=ZONE, instance="persisted-1")
        assert (again.id, dict(again.labels)) == (vm.id, {"k": "v"})
        assert httpx.get(f"{base}/oauth2/v3/certs").json() == jwks_before
        identity = verify_gcp_token(
            token_before,
            keys=RemoteJwks.for_url(f"{base}/oauth2/v3/certs"),
            audience=AUDIENCE,
            now=datetime.now(UTC),
        )
        assert identity.instance_id == str(vm.id)


def test_describe_and_worker_env(tmp_path: Path) -> None:
    described = describe(tmp_path, "127.0.0.1", 8702)
    assert described["metadata"] == "http://127.0.0.1:8702/vm/{name}"
    assert described["jwks_url"] == "http://127.0.0.1:8702/oauth2/v3/certs"
    assert described["jwks_file"] == str(tmp_path / "gcp" / "jwks.json")
    assert described["compute_endpoint"] == "http://127.0.0.1:8702"
    env = worker_env(tmp_path, "127.0.0.1", 8702)
    assert env["FLEETPATCH_GCP__JWKS_URL"] == described["jwks_url"]
    assert env["FLEETPATCH_GCP__COMPUTE_ENDPOINT"] == described["compute_endpoint"]
    assert env["FLEETPATCH_GCP__COMPUTE_CREDENTIALS"] == "anonymous"
    assert not (tmp_path / "gcp").exists()  # pure: nothing written


def test_aggregated_list_follows_inserts_label_changes_and_deletes(cloud: Cloud) -> None:
    """What reconcile reads: every zone of the project through the SDK's aggregatedList."""
    project = "agg-project-1"
    for name, zone in (("agg-a", "us-east1-b"), ("agg-b", "europe-west1-c")):
        cloud.sdk.insert(
            project=project, zone=zone,
            instance_resource=compute_v1.Instance(name=name, labels={"rackspace-addon-patching": "true"}),
        ).result(timeout=10)
    listed = GceInstances(cloud.sdk).list_vms(project)
    assert sorted((v.name, v.region) for v in listed) == [("agg-a", "us-east1-b"), ("agg-b", "europe-west1-c")]
    scopes = dict(cloud.sdk.aggregated_list(project=project))
    assert set(scopes) == {"zones/us-east1-b", "zones/europe-west1-c"}

    current = cloud.sdk.get(project=project, zone="us-east1-b", instance="agg-a")
    cloud.sdk.set_labels(
        project=project, zone="us-east1-b", instance="agg-a",
        instances_set_labels_request_resource=compute_v1.InstancesSetLabelsRequest(
            labels={"rackspace-addon-patching": "false"}, label_fingerprint=current.label_fingerprint
        ),
    ).result(timeout=10)
    cloud.sdk.delete(project=project, zone="europe-west1-c", instance="agg-b").result(timeout=10)
    (only,) = GceInstances(cloud.sdk).list_vms(project)
    assert only.name == "agg-a" and only.instance_id == str(current.id)
    assert only.labels == {"rackspace-addon-patching": "false"} and only.state == "RUNNING"
    assert GceInstances(cloud.sdk).list_vms("agg-empty-project") == []

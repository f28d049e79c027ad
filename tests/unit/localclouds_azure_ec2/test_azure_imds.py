"""Local Azure IMDS over HTTP: header rules, attested documents, instance metadata."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from asn1crypto import cms
from cryptography import x509

from clouds.azure.verify import trust_from_settings, verify_azure_attested
from contracts.errors import ErrorType, IdentityRefused
from tests.unit.localclouds_azure_ec2.azure_helpers import (
    create_vm,
    imds_get,
    new_subscription,
    signature_der,
)
from tests.unit.localclouds_azure_ec2.conftest import AzureCloud

DATA = Path(__file__).resolve().parents[2] / "data" / "localclouds_azure_ec2"
ATTESTED = "/metadata/attested/document"
INSTANCE = "/metadata/instance"


@pytest.fixture(scope="module")
def vm(azure_cloud: AzureCloud) -> dict[str, str]:
    """One VM created through ARM; returns its ids and IMDS base URL."""
    sub = new_subscription()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in azure_cloud.env.items():
            mp.setenv(name, value)
        made = create_vm(
            sub,
            "rg-imds",
            "imds-vm-1",
            tags={"rackspace-addon-patching": "true", "env": "dev"},
            location="West Europe",
        )
    return {
        "subscription": sub,
        "vm_id": made.properties.vm_id,
        "base": azure_cloud.imds_url("imds-vm-1"),
    }


# --- the rules every IMDS request must follow -------------------------------------------------


def test_metadata_header_is_required(vm: dict[str, str]) -> None:
    for headers in ({}, {"Metadata": "false"}):
        r = httpx.get(
            f"{vm['base']}{INSTANCE}", params={"api-version": "2021-02-01"}, headers=headers
        )
        assert r.status_code == 400
        assert r.json() == {"error": "Bad request. Required metadata header not specified"}


def test_x_forwarded_for_is_refused(vm: dict[str, str]) -> None:
    for path in (INSTANCE, ATTESTED):
        r = imds_get(
            vm["base"],
            path,
            headers={"X-Forwarded-For": "10.0.0.9"},
            **{"api-version": "2021-02-01"},
        )
        assert r.status_code == 400
        assert "X-Forwarded-For" in r.json()["error"]


@pytest.mark.parametrize(
    "params", [{}, {"api-version": "2099-01-01"}, {"api-version": "2017-04-02"}]
)
def test_api_version_must_be_given_and_known(vm: dict[str, str], params: dict[str, str]) -> None:
    # 2017-04-02 exists but predates the attested category (2018-10-01).
    r = imds_get(vm["base"], ATTESTED, **params)
    assert r.status_code == 400
    body = r.json()
    assert body["error"].startswith("Bad request. api-version is invalid or was not specified")
    assert len(body["newest-versions"]) == 3


def test_duplicate_query_parameters_are_refused(vm: dict[str, str]) -> None:
    r = httpx.get(
        f"{vm['base']}{ATTESTED}?api-version=2020-09-01&nonce=a1&nonce=b2",
        headers={"Metadata": "true"},
    )
    assert r.status_code == 400


def test_only_get_is_allowed(vm: dict[str, str]) -> None:
    r = httpx.post(
        f"{vm['base']}{INSTANCE}",
        params={"api-version": "2021-02-01"},
        headers={"Metadata": "true"},
    )
    assert r.status_code == 405


def test_unknown_vm_is_not_found(azure_cloud: AzureCloud) -> None:
    r = imds_get(azure_cloud.imds_url("no-such-vm"), INSTANCE, **{"api-version": "2021-02-01"})
    assert r.status_code == 404


@pytest.mark.parametrize("nonce", ["a" * 33, "abc-123", "abc 123", "ünï"])
def test_nonce_must_be_at_most_32_alphanumerics(vm: dict[str, str], nonce: str) -> None:
    r = imds_get(vm["base"], ATTESTED, **{"api-version": "2020-09-01", "nonce": nonce})
    assert r.status_code == 400


# --- attested document ----------------------------------------------------------------------


def _attested(vm: dict[str, str], **params: str) -> dict[str, str]:
    r = imds_get(vm["base"], ATTESTED, **{"api-version": "2020-09-01", **params})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def _content(der: bytes) -> dict:
    info = cms.ContentInfo.load(der)
    return json.loads(info["content"]["encap_content_info"]["content"].native)


def test_attested_document_shape_matches_a_real_one(vm: dict[str, str]) -> None:
    nonce = "A" * 16 + "9" * 16  # the longest nonce allowed
    attested = _attested(vm, nonce=nonce)
    assert set(attested) == {"encoding", "signature"} and attested["encoding"] == "pkcs7"
    content = _content(signature_der(attested))
    real = json.loads((DATA / "azure" / "coder-eastus-2024" / "content.json").read_text())
    assert list(content) == list(real)  # same fields, same order
    assert content["nonce"] == nonce
    assert content["vmId"] == vm["vm_id"]
    assert content["subscriptionId"] == vm["subscription"]
    assert content["sku"] == "22_04-lts-gen2"
    assert content["plan"] == {"name": "", "product": "", "publisher": ""}
    created = datetime.strptime(content["timeStamp"]["createdOn"], "%m/%d/%y %H:%M:%S %z")
    expires = datetime.strptime(content["timeStamp"]["expiresOn"], "%m/%d/%y %H:%M:%S %z")
    assert expires - created == timedelta(hours=6)
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)


def test_missing_nonce_becomes_a_timestamp_like_imds_writes(vm: dict[str, str]) -> None:
    content = _content(signature_der(_attested(vm)))
    assert re.fullmatch(r"\d{8}-\d{6}", content["nonce"])
    expires = datetime.strptime(content["timeStamp"]["expiresOn"], "%m/%d/%y %H:%M:%S %z")
    assert content["nonce"] == expires.strftime("%Y%m%d-%H%M%S")  # as in every real sample


def test_older_api_versions_sign_fewer_fields(vm: dict[str, str]) -> None:
    content = _content(signature_der(_attested(vm, **{"api-version": "2018-10-01", "nonce": "x1"})))
    assert list(content) == ["nonce", "plan", "timeStamp", "vmId"]  # like the 2021 sample


def test_signed_data_embeds_only_the_signer(vm: dict[str, str], azure_cloud: AzureCloud) -> None:
    info = cms.ContentInfo.load(signature_der(_attested(vm, nonce="n1")))
    signed = info["content"]
    assert signed["digest_algorithms"][0]["algorithm"].native == "sha256"
    assert len(signed["signer_infos"]) == 1
    signer_info = signed["signer_infos"][0]
    assert signer_info["signed_attrs"].native is not None
    certs = signed["certificates"]
    assert len(certs) == 1
    leaf = x509.load_der_x509_certificate(certs[0].chosen.dump())
    assert (
        leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        == "metadata.azure.com"
    )
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "westeurope.metadata.azure.com" in sans.get_values_for_type(x509.DNSName)
    persisted = x509.load_pem_x509_certificate(
        (azure_cloud.state_dir / "azure" / "imds-signers" / "westeurope.pem").read_bytes()
    )
    assert persisted == leaf


def test_attested_document_verifies_with_openssl(
    vm: dict[str, str], azure_cloud: AzureCloud, tmp_path: Path
) -> None:
    env = azure_cloud.env
    der = tmp_path / "sig.der"
    der.write_bytes(signature_der(_attested(vm, nonce="openssl1")))
    bundle = tmp_path / "chain.pem"
    bundle.write_bytes(
        Path(env["FLEETPATCH_AZURE__ROOTS_FILE"]).read_bytes()
        + Path(env["FLEETPATCH_AZURE__INTERMEDIATES_FILE"]).read_bytes()
    )
    ok = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            str(der),
            "-CAfile",
            str(bundle),
            "-purpose",
            "any",
        ],
        capture_output=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["nonce"] == "openssl1"
    root_only = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            str(der),
            "-CAfile",
            env["FLEETPATCH_AZURE__ROOTS_FILE"],
            "-purpose",
            "any",
        ],
        capture_output=True,
    )
    assert root_only.returncode != 0  # the intermediate is not embedded: it comes from settings


def test_attested_document_passes_the_product_verifier(
    vm: dict[str, str], azure_cloud: AzureCloud
) -> None:
    env = azure_cloud.env
    roots, intermediates = trust_from_settings(
        Path(env["FLEETPATCH_AZURE__ROOTS_FILE"]), Path(env["FLEETPATCH_AZURE__INTERMEDIATES_FILE"])
    )
    attested = _attested(vm, nonce="challenge42")
    verified = verify_azure_attested(
        attested,
        nonce="challenge42",
        roots=roots,
        intermediates=intermediates,
        now=datetime.now(UTC),
    )
    assert verified.instance_id == vm["vm_id"]
    assert verified.cloud_account == vm["subscription"]
    assert verified.evidence["signer_san"] == "westeurope.metadata.azure.com"
    with pytest.raises(IdentityRefused) as refused:
        verify_azure_attested(
            attested,
            nonce="another1",
            roots=roots,
            intermediates=intermediates,
            now=datetime.now(UTC),
        )
    assert refused.value.type == ErrorType.IDENTITY_NONCE_MISMATCH
    production_roots, production_intermediates = trust_from_settings(None, None)
    with pytest.raises(IdentityRefused) as untrusted:  # Azure's real roots never vouch for it
        verify_azure_attested(
            attested,
            nonce="challenge42",
            roots=production_roots,
            intermediates=production_intermediates,
            now=datetime.now(UTC),
        )
    assert untrusted.value.type == ErrorType.IDENTITY_CERTIFICATE_UNTRUSTED


# --- instance metadata ------------------------------------------------------------------------


def test_instance_metadata_describes_the_vm(vm: dict[str, str]) -> None:
    r = imds_get(vm["base"], INSTANCE, **{"api-version": "2021-02-01"})
    assert r.status_code == 200
    doc = r.json()
    compute = doc["compute"]
    assert compute["vmId"] == vm["vm_id"]
    assert compute["name"] == "imds-vm-1"
    assert compute["location"] == "westeurope"
    assert compute["subscriptionId"] == vm["subscription"]
    assert compute["resourceGroupName"] == "rg-imds"
    assert compute["resourceId"] == (
        f"/subscriptions/{vm['subscription']}/resourceGroups/rg-imds/providers/"
        "Microsoft.Compute/virtualMachines/imds-vm-1"
    )
    assert compute["osType"] == "Linux"
    assert compute["tags"] == "rackspace-addon-patching:true;env:dev"
    assert compute["tagsList"] == [
        {"name": "rackspace-addon-patching", "value": "true"},
        {"name": "env", "value": "dev"},
    ]
    assert compute["storageProfile"]["osDisk"]["osType"] == "Linux"
    assert compute["osProfile"]["computerName"] == "imds-vm-1"
    assert all(isinstance(v, str) for v in compute.values() if not isinstance(v, dict | list))
    ip = doc["network"]["interface"][0]["ipv4"]["ipAddress"][0]["privateIpAddress"]
    assert re.fullmatch(r"10\.0\.\d+\.\d+", ip)


def test_route_parameters_filter_and_text_format(vm: dict[str, str]) -> None:
    compute = imds_get(vm["base"], f"{INSTANCE}/compute", **{"api-version": "2021-02-01"})
    assert compute.status_code == 200 and compute.json()["vmId"] == vm["vm_id"]
    leaf = imds_get(
        vm["base"], f"{INSTANCE}/compute/vmId", **{"api-version": "2021-02-01", "format": "text"}
    )
    assert leaf.status_code == 200 and leaf.text == vm["vm_id"]
    as_json = imds_get(vm["base"], f"{INSTANCE}/compute/vmId", **{"api-version": "2021-02-01"})
    assert as_json.status_code == 400  # a leaf needs format=text
    tag = imds_get(
        vm["base"],
        f"{INSTANCE}/compute/tagsList/1/value",
        **{"api-version": "2021-02-01", "format": "text"},
    )
    assert tag.text == "dev"
    missing = imds_get(vm["base"], f"{INSTANCE}/compute/nothing", **{"api-version": "2021-02-01"})
    assert missing.status_code == 404


def test_vm_can_be_addressed_by_vm_id(vm: dict[str, str], azure_cloud: AzureCloud) -> None:
    r = imds_get(
        azure_cloud.imds_url(vm["vm_id"]),
        f"{INSTANCE}/compute/name",
        **{"api-version": "2021-02-01", "format": "text"},
    )
    assert r.text == "imds-vm-1"

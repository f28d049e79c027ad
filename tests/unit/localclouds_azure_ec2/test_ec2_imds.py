"""Local EC2 IMDS (IMDSv2 only) over HTTP, for instances a moto server runs."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from clouds.ec2.verify import Ec2TrustStore, verify_ec2_identity
from contracts.errors import ErrorType, IdentityRefused
from localclouds import ec2 as local_ec2
from tests.unit.localclouds_azure_ec2.conftest import (
    Ec2Cloud,
    account_session,
    new_account,
    run_instance,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "localclouds_azure_ec2"
IDENTITY = "/latest/dynamic/instance-identity"
TTL = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN = "X-aws-ec2-metadata-token"
ALL_FORMS = frozenset({"rsa2048", "pkcs7", "signature"})


@pytest.fixture(scope="module")
def instance(ec2_cloud: Ec2Cloud) -> dict[str, Any]:
    account = new_account()
    inst = run_instance(ec2_cloud.moto, account, "eu-west-1", tags={"Name": "web-7", "team": "ops"})
    return {
        "account": account,
        "inst": inst,
        "base": ec2_cloud.base(account, "eu-west-1", inst["InstanceId"]),
    }


def token(base: str, ttl: str = "300") -> str:
    r = httpx.put(f"{base}/latest/api/token", headers={TTL: ttl})
    assert r.status_code == 200, r.text
    assert r.headers[TTL.lower()] == ttl
    return r.text


def get(base: str, path: str, tok: str | None) -> httpx.Response:
    return httpx.get(f"{base}{path}", headers={TOKEN: tok} if tok else {})


# --- IMDSv2 -------------------------------------------------------------------------------------


def test_gets_without_a_token_are_401(instance: dict[str, Any]) -> None:
    r = get(instance["base"], f"{IDENTITY}/document", None)
    assert r.status_code == 401
    assert "<title>401 - Unauthorized</title>" in r.text
    assert get(instance["base"], f"{IDENTITY}/document", "AQAEAnot-a-real-token").status_code == 401


@pytest.mark.parametrize("ttl", [None, "0", "21601", "-5", "abc", "1.5"])
def test_token_ttl_must_be_1_to_21600(instance: dict[str, Any], ttl: str | None) -> None:
    r = httpx.put(
        f"{instance['base']}/latest/api/token", headers={TTL: ttl} if ttl is not None else {}
    )
    assert r.status_code == 400


def test_token_ttl_bounds_are_inclusive(instance: dict[str, Any]) -> None:
    for ttl in ("1", "21600"):
        assert (
            get(
                instance["base"], "/latest/meta-data/instance-id", token(instance["base"], ttl)
            ).status_code
            == 200
        )


def test_token_expires(instance: dict[str, Any]) -> None:
    tok = token(instance["base"], "1")
    assert get(instance["base"], "/latest/meta-data/instance-id", tok).status_code == 200
    time.sleep(1.1)
    assert get(instance["base"], "/latest/meta-data/instance-id", tok).status_code == 401


def test_token_is_bound_to_its_instance(ec2_cloud: Ec2Cloud, instance: dict[str, Any]) -> None:
    other = run_instance(ec2_cloud.moto, instance["account"], "eu-west-1")
    other_base = ec2_cloud.base(instance["account"], "eu-west-1", other["InstanceId"])
    assert (
        get(other_base, "/latest/meta-data/instance-id", token(instance["base"])).status_code == 401
    )


def test_proxied_token_requests_and_other_methods_are_refused(instance: dict[str, Any]) -> None:
    r = httpx.put(
        f"{instance['base']}/latest/api/token", headers={TTL: "60", "X-Forwarded-For": "10.1.1.1"}
    )
    assert r.status_code == 403
    assert httpx.get(f"{instance['base']}/latest/api/token", headers={TTL: "60"}).status_code == 405
    assert (
        httpx.post(
            f"{instance['base']}{IDENTITY}/document", headers={TOKEN: token(instance["base"])}
        ).status_code
        == 405
    )


def test_unknown_or_stopped_instances_have_no_imds(
    ec2_cloud: Ec2Cloud, instance: dict[str, Any]
) -> None:
    ghost = ec2_cloud.base(instance["account"], "eu-west-1", "i-0123456789abcdef0")
    assert httpx.put(f"{ghost}/latest/api/token", headers={TTL: "60"}).status_code == 404
    wrong_account = ec2_cloud.base(new_account(), "eu-west-1", instance["inst"]["InstanceId"])
    assert httpx.put(f"{wrong_account}/latest/api/token", headers={TTL: "60"}).status_code == 404
    stopped = run_instance(ec2_cloud.moto, instance["account"], "eu-west-1")
    base = ec2_cloud.base(instance["account"], "eu-west-1", stopped["InstanceId"])
    tok = token(base)
    account_session(ec2_cloud.moto, instance["account"]).client(
        "ec2", region_name="eu-west-1", endpoint_url=ec2_cloud.moto
    ).stop_instances(InstanceIds=[stopped["InstanceId"]])
    assert get(base, "/latest/meta-data/instance-id", tok).status_code == 404


# --- the identity document and its signatures -------------------------------------------------


def test_document_matches_moto_and_real_formatting(instance: dict[str, Any]) -> None:
    r = get(instance["base"], f"{IDENTITY}/document", token(instance["base"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    doc = json.loads(text)
    inst = instance["inst"]
    assert doc["accountId"] == instance["account"]
    assert doc["instanceId"] == inst["InstanceId"]
    assert doc["imageId"] == inst["ImageId"]
    assert doc["instanceType"] == inst["InstanceType"]
    assert doc["privateIp"] == inst["PrivateIpAddress"]
    assert doc["availabilityZone"] == inst["Placement"]["AvailabilityZone"]
    assert doc["architecture"] == inst["Architecture"]
    assert doc["region"] == "eu-west-1"
    assert doc["pendingTime"] == inst["LaunchTime"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    real = (DATA / "aws" / "metaphor-ap-southeast-2-2026" / "document.json").read_text()
    assert list(doc) == list(json.loads(real))  # same fields, same order
    assert text.startswith('{\n  "accountId" : "') and text.endswith('"\n}')  # EC2's layout
    assert '"kernelId" : null,' in text and not text.endswith("\n")


def _bodies(base: str) -> dict[str, str]:
    tok = token(base)
    return {
        name: get(base, f"{IDENTITY}/{name}", tok).text
        for name in ("document", "rsa2048", "pkcs7", "signature")
    }


def test_signed_forms_verify_with_openssl(
    ec2_cloud: Ec2Cloud, instance: dict[str, Any], tmp_path: Path
) -> None:
    bodies = _bodies(instance["base"])
    certs = ec2_cloud.state_dir / "ec2" / "certs"
    doc = tmp_path / "document.json"
    doc.write_text(bodies["document"])
    for form, sub in (("rsa2048", "rsa2048"), ("pkcs7", "dsa")):
        assert "BEGIN" not in bodies[form] and max(map(len, bodies[form].splitlines())) <= 76
        der = base64.b64decode(bodies[form])
        assert der[:2] == b"\x30\x80"  # indefinite-length BER, as EC2 writes it
        out = subprocess.run(
            [
                "openssl",
                "smime",
                "-verify",
                "-inform",
                "DER",
                "-certfile",
                str(certs / sub / "eu-west-1.pem"),
                "-noverify",
            ],
            input=der,
            capture_output=True,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout == bodies["document"].encode()  # the exact bytes /document serves
        wrong_region = subprocess.run(
            [
                "openssl",
                "smime",
                "-verify",
                "-inform",
                "DER",
                "-certfile",
                str(certs / sub / "us-east-1.pem"),
                "-noverify",
            ],
            input=der,
            capture_output=True,
        )
        assert wrong_region.returncode != 0
    sig = tmp_path / "signature.bin"
    sig.write_bytes(base64.b64decode(bodies["signature"]))
    pub = subprocess.run(
        ["openssl", "x509", "-in", str(certs / "rsa" / "eu-west-1.pem"), "-pubkey", "-noout"],
        capture_output=True,
        check=True,
    ).stdout
    (tmp_path / "pub.pem").write_bytes(pub)
    ok = subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            str(tmp_path / "pub.pem"),
            "-signature",
            str(sig),
            str(doc),
        ],
        capture_output=True,
    )
    assert ok.returncode == 0, ok.stderr


def test_signed_forms_pass_the_product_verifier(
    ec2_cloud: Ec2Cloud, instance: dict[str, Any]
) -> None:
    bodies = _bodies(instance["base"])
    trust = Ec2TrustStore.from_dir(
        local_ec2.worker_env(ec2_cloud.state_dir, "127.0.0.1", 1)["FLEETPATCH_EC2__CERTS_DIR"]
    )
    now = datetime.now(UTC)
    for identity in (
        {"rsa2048": bodies["rsa2048"], "document": bodies["document"]},
        {"pkcs7": bodies["pkcs7"]},
        {"document": bodies["document"], "signature": bodies["signature"]},
    ):
        verified = verify_ec2_identity(identity, trust=trust, now=now, accepted_forms=ALL_FORMS)
        assert verified.cloud_account == instance["account"]
        assert verified.instance_id == instance["inst"]["InstanceId"]
        assert verified.region == "eu-west-1"
    with pytest.raises(IdentityRefused) as refused:  # AWS's real certificates never vouch for it
        verify_ec2_identity(
            {"rsa2048": bodies["rsa2048"]}, trust=Ec2TrustStore.production(), now=now
        )
    assert refused.value.type in (
        ErrorType.IDENTITY_REGION_UNKNOWN,
        ErrorType.IDENTITY_SIGNATURE_INVALID,
    )
    tampered = bodies["document"].replace(instance["inst"]["InstanceId"], "i-0123456789abcdef0")
    with pytest.raises(IdentityRefused):
        verify_ec2_identity(
            {"document": tampered, "signature": bodies["signature"]},
            trust=trust,
            now=now,
            accepted_forms=ALL_FORMS,
        )


# --- meta-data --------------------------------------------------------------------------------


def test_meta_data_paths(instance: dict[str, Any]) -> None:
    tok = token(instance["base"])
    inst = instance["inst"]
    assert get(instance["base"], "/latest/meta-data/instance-id", tok).text == inst["InstanceId"]
    assert get(instance["base"], "/latest/meta-data/placement/region", tok).text == "eu-west-1"
    assert (
        get(instance["base"], "/latest/meta-data/placement/availability-zone", tok).text
        == "eu-west-1a"
    )
    assert (
        get(instance["base"], "/latest/meta-data/local-ipv4", tok).text == inst["PrivateIpAddress"]
    )
    assert get(instance["base"], f"{IDENTITY}/", tok).text.split("\n") == [
        "document",
        "pkcs7",
        "rsa2048",
        "signature",
    ]
    assert get(instance["base"], "/latest/meta-data/nothing", tok).status_code == 404


def test_tags_in_metadata_only_when_the_instance_allows_it(
    ec2_cloud: Ec2Cloud, instance: dict[str, Any]
) -> None:
    tok = token(instance["base"])
    assert get(instance["base"], "/latest/meta-data/tags/instance", tok).status_code == 404
    ec2 = account_session(ec2_cloud.moto, instance["account"]).client(
        "ec2", region_name="eu-west-1", endpoint_url=ec2_cloud.moto
    )
    ec2.modify_instance_metadata_options(
        InstanceId=instance["inst"]["InstanceId"],
        InstanceMetadataTags="enabled",
        HttpTokens="required",
    )
    try:
        assert get(instance["base"], "/latest/meta-data/tags/instance", tok).text.split("\n") == [
            "Name",
            "team",
        ]
        assert get(instance["base"], "/latest/meta-data/tags/instance/team", tok).text == "ops"
        assert (
            get(instance["base"], "/latest/meta-data/tags/instance/absent", tok).status_code == 404
        )
    finally:
        ec2.modify_instance_metadata_options(
            InstanceId=instance["inst"]["InstanceId"], InstanceMetadataTags="disabled"
        )


def test_describe_and_worker_env(ec2_cloud: Ec2Cloud) -> None:
    info = local_ec2.describe(ec2_cloud.state_dir, "127.0.0.1", ec2_cloud.imds.port)
    assert (
        info["imds"]
        == f"http://127.0.0.1:{ec2_cloud.imds.port}/vm/{{account}}/{{region}}/{{instance_id}}"
    )
    certs = Path(info["certs_dir"])
    assert local_ec2.worker_env(ec2_cloud.state_dir, "127.0.0.1", ec2_cloud.imds.port) == {
        "FLEETPATCH_EC2__CERTS_DIR": str(certs)
    }
    for region in ("us-east-1", "us-west-2", "eu-west-1"):  # generated before reporting healthy
        for form in ("rsa2048", "rsa", "dsa"):
            assert (certs / form / f"{region}.pem").is_file()
    assert not list(certs.rglob("*.key"))  # keys live outside the certificates directory

"""``fleetpatch verify`` accepts every production conformance sample with the production trust
anchors, and refuses the negatives, each with its type."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clients.cli.main import app
from clouds.ec2.verify import PRODUCTION_TRUST_DIR
from clouds.vmware.token import generate_signing_key, issue_token

DATA = Path(__file__).resolve().parents[2] / "data" / "conformance"
runner = CliRunner()


def _run(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["verify", *args])
    return result.exit_code, json.loads(result.stdout)


GCP = DATA / "gcp" / "redhat-us-east1-2021"
GCP_ARGS = ("--provider", "gcp", "--identity", str(GCP / "token.jwt"), "--jwks", str(GCP / "jwks-kid-6a8ba565.json"),
            "--audience", "https://subscription.rhsm.redhat.com:443/subscription")


def test_gcp_sample_accepted() -> None:
    code, out = _run(*GCP_ARGS, "--at", "2021-03-24T14:31:00Z")
    assert code == 0, out
    assert out["cloud_account"] == "fair-kingdom-308514"
    assert out["instance_id"] == "2589221140676718026"
    assert out["region"] == "us-east1-b"


@pytest.mark.parametrize(
    ("extra", "refusal"),
    [
        (("--at", "2021-03-24T16:00:00Z"), "IdentityExpired"),
        (("--at", "2021-03-24T14:00:00Z"), "IdentityNotYetValid"),
    ],
)
def test_gcp_sample_outside_its_validity(extra: tuple[str, ...], refusal: str) -> None:
    code, out = _run(*GCP_ARGS, *extra)
    assert code == 1 and out["refused"] == refusal


def test_gcp_wrong_audience() -> None:
    args = list(GCP_ARGS)
    args[args.index("--audience") + 1] = "https://subscription.rhsm.redhat.com:443/subscriptionX"
    code, out = _run(*args, "--at", "2021-03-24T14:31:00Z")
    assert code == 1 and out["refused"] == "IdentityAudienceMismatch"


AWS = DATA / "aws"


@pytest.mark.parametrize(
    ("sample", "form", "at", "account", "instance"),
    [
        ("tc-us-west-2-2018/rsa2048.b64", None, "2018-05-10T00:00:00Z", "692406183521", "i-0a30e04d85e6f8793"),
        ("tc-us-west-2-2018/pkcs7.b64", "pkcs7", "2018-05-10T00:00:00Z", "692406183521", "i-0a30e04d85e6f8793"),
        ("metaphor-ap-southeast-2-2026/rsa2048.b64", None, "2026-02-17T00:00:00Z", "189292791360", "i-0c5541936caf78c12"),
        ("vault-us-east-1-2016-dsa/pkcs7.pem", "pkcs7", "2016-04-09T00:00:00Z", "121659014334", "i-f79fe56c"),
        ("ncbi-us-east-1-2019-dsa/pkcs7.b64", "pkcs7", "2019-06-26T00:00:00Z", "250813660784", "i-06a91ac746b572ef4"),
    ],
)
def test_aws_samples_accepted(sample: str, form: str | None, at: str, account: str, instance: str) -> None:
    args = ["--provider", "aws", "--identity", str(AWS / sample), "--at", at]
    if form:
        args += ["--form", form]
    code, out = _run(*args)
    assert code == 0, out
    assert (out["cloud_account"], out["instance_id"]) == (account, instance)


@pytest.mark.parametrize("sample", ["tc-us-west-2-2018", "metaphor-ap-southeast-2-2026"])
def test_aws_detached_signatures_accepted(sample: str, tmp_path: Path) -> None:
    folder = AWS / sample
    identity = tmp_path / "identity.json"
    identity.write_text(json.dumps({
        "document": (folder / "document.json").read_text(),
        "signature": (folder / "signature.b64").read_text().strip(),
    }))
    at = "2018-05-10T00:00:00Z" if sample.startswith("tc") else "2026-02-17T00:00:00Z"
    code, out = _run("--provider", "aws", "--identity", str(identity), "--at", at)
    assert code == 0, out


def test_aws_sample_against_another_regions_certificate(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    shutil.copytree(PRODUCTION_TRUST_DIR, certs)
    rsa2048 = certs / "rsa2048"
    (rsa2048 / "us-west-2.pem").write_bytes((rsa2048 / "us-east-1.pem").read_bytes())
    code, out = _run("--provider", "aws", "--identity", str(AWS / "tc-us-west-2-2018/rsa2048.b64"),
                     "--at", "2018-05-10T00:00:00Z", "--roots", str(certs))
    assert code == 1 and out["refused"] == "IdentitySignatureInvalid"


AZURE = DATA / "azure"


def test_azure_redhat_sample_without_subscription_refused() -> None:
    # An old api-version document: signature and chain verify, but it names no subscription,
    # which production refuses (the tenant never comes from an unsigned resource id).
    code, out = _run("--provider", "azure", "--identity", str(AZURE / "redhat-westeurope-2021/attested-document.json"),
                     "--nonce", "20210104-195534", "--at", "2021-01-04T14:00:00Z")
    assert code == 1 and out["refused"] == "IdentityClaimsMissing", out


def test_azure_coder_sample_accepted(tmp_path: Path) -> None:
    identity = tmp_path / "attested.json"
    identity.write_text(json.dumps({"encoding": "pkcs7", "signature": (AZURE / "coder-eastus-2024/signature.b64").read_text().strip()}))
    code, out = _run("--provider", "azure", "--identity", str(identity), "--nonce", "20240422-233245", "--at", "2024-04-22T17:40:00Z")
    assert code == 0, out
    assert out["cloud_account"] == "05e8b285-4ce1-46a3-b4c9-f51ba67d6acc"


def test_azure_wrong_nonce_refused() -> None:
    code, out = _run("--provider", "azure", "--identity", str(AZURE / "redhat-westeurope-2021/attested-document.json"),
                     "--nonce", "20210104-195535", "--at", "2021-01-04T14:00:00Z")
    assert code == 1 and out["refused"] == "IdentityNonceMismatch"


def test_azure_self_signed_test_signer_refused(tmp_path: Path) -> None:
    identity = tmp_path / "attested.json"
    identity.write_text(json.dumps({"encoding": "pkcs7", "signature": (AZURE / "msdocs-testsubdomain-2018/signature.b64").read_text().strip()}))
    code, out = _run("--provider", "azure", "--identity", str(identity), "--nonce", "1234566766", "--at", "2018-11-20T22:08:00Z")
    assert code == 1 and out["refused"] in ("IdentityCertificateUntrusted", "IdentitySignatureInvalid", "IdentityAlgorithmRefused")


def test_vmware_token(tmp_path: Path) -> None:
    private, public = generate_signing_key("EdDSA")
    now = datetime.now(UTC)
    token = issue_token(private, vcenter_id="vc-1", instance_uuid="4210d6b2-1111-2222-3333-444455556666",
                        customer="acme", now=now, ttl=timedelta(hours=1))
    (tmp_path / "token").write_text(token)
    (tmp_path / "keys.pem").write_text(public)
    code, out = _run("--provider", "vmware", "--identity", str(tmp_path / "token"), "--roots", str(tmp_path / "keys.pem"))
    assert code == 0, out
    assert out["cloud_account"] == "vc-1"
    _, other_public = generate_signing_key("EdDSA")
    (tmp_path / "other.pem").write_text(other_public)
    code, out = _run("--provider", "vmware", "--identity", str(tmp_path / "token"), "--roots", str(tmp_path / "other.pem"))
    assert code == 1 and out["refused"] in ("IdentityKeyUnknown", "IdentitySignatureInvalid")


def test_vmware_token_of_a_shared_vcenters_link(tmp_path: Path) -> None:
    private, public = generate_signing_key("EdDSA")
    token = issue_token(private, vcenter_id="vc-1", instance_uuid="4210d6b2-1111-2222-3333-444455556666",
                        customer="globex", now=datetime.now(UTC), ttl=timedelta(hours=1), link="vc-1:globex")
    (tmp_path / "token").write_text(token)
    (tmp_path / "keys.pem").write_text(public)
    code, out = _run("--provider", "vmware", "--identity", str(tmp_path / "token"), "--roots", str(tmp_path / "keys.pem"))
    assert code == 0, out
    assert (out["cloud_account"], out["instance_key"]) == ("vc-1:globex", "vc-1:globex/4210d6b2-1111-2222-3333-444455556666")


def test_garbage_is_refused_not_a_crash(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_text("not-a-token")
    for provider in ("gcp", "aws", "vmware"):
        extra = ["--roots", str(junk)] if provider == "vmware" else []
        if provider == "gcp":
            extra = ["--jwks", str(GCP / "jwks-kid-6a8ba565.json")]
        code, out = _run("--provider", provider, "--identity", str(junk), *extra)
        assert code == 1 and out["refused"].startswith("Identity"), (provider, out)

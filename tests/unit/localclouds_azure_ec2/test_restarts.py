"""Both local clouds stop cleanly on SIGTERM and come back with the same keys and state."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from localclouds import azure as local_azure
from tests.unit.localclouds_azure_ec2.azure_helpers import (
    create_vm,
    imds_get,
    new_subscription,
    signature_der,
)
from tests.unit.localclouds_azure_ec2.conftest import run_instance, start_azure
from tests.unit.localclouds_azure_ec2.procs import free_port, start_cloud


def _fingerprints(root: Path) -> dict[str, str]:
    """SHA-256 of every certificate and key file under ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.suffix in (".pem", ".key") or p.name == "identity.json"
    }


def test_azure_restart_keeps_keys_vms_and_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = start_azure(tmp_path)
    try:
        for name, value in cloud.env.items():
            monkeypatch.setenv(name, value)
        sub = new_subscription()
        made = create_vm(sub, "rg-r", "keep-me", tags={"k": "v"})
        token = httpx.get(
            cloud.env["IDENTITY_ENDPOINT"],
            params={"api-version": "2019-08-01", "resource": "https://management.azure.com"},
            headers={"X-IDENTITY-HEADER": cloud.env["IDENTITY_HEADER"]},
        ).json()["access_token"]
        before = _fingerprints(tmp_path / "azure")
        assert (
            any(k.startswith("imds-signers/") for k in before)
            and "private/token-signing.key" in before
        )
    finally:
        first_exit = cloud.imds.stop()
    assert first_exit == 0

    again = start_azure(tmp_path)  # new ports, same state directory
    try:
        assert _fingerprints(tmp_path / "azure") == before
        env = again.env
        assert env["IDENTITY_HEADER"] == cloud.env["IDENTITY_HEADER"]
        r = httpx.get(
            f"{env['FLEETPATCH_AZURE__ARM_ENDPOINT']}/subscriptions/{sub}/resourceGroups/rg-r/providers/"
            "Microsoft.Compute/virtualMachines/keep-me",
            params={"api-version": "2024-07-01"},
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=env["FLEETPATCH_AZURE__CA_BUNDLE"]),
        )
        assert r.status_code == 200  # the token from before the restart still verifies
        assert r.json()["properties"]["vmId"] == made.properties.vm_id
        assert r.json()["tags"] == {"k": "v"}
        attested = imds_get(
            again.imds_url("keep-me"),
            "/metadata/attested/document",
            **{"api-version": "2020-09-01", "nonce": "after"},
        ).json()
        assert made.properties.vm_id.encode() in signature_der(attested)
        signer = x509.load_pem_x509_certificate(
            (tmp_path / "azure" / "imds-signers" / "eastus.pem").read_bytes()
        )
        assert signer.public_bytes(Encoding.DER) in signature_der(attested)
    finally:
        assert again.imds.stop() == 0


def test_azure_describe_is_pure_paths(tmp_path: Path) -> None:
    info = local_azure.describe(tmp_path, "127.0.0.1", 9100)
    assert info["arm"] == "https://127.0.0.1:9101"  # nothing recorded yet: the IMDS port + 1
    assert info["ca_bundle"] == str((tmp_path / "azure" / "arm-ca.pem").resolve())
    assert not (tmp_path / "azure" / "arm-ca.pem").exists()


def test_ec2_restart_keeps_certificates(moto: str, tmp_path: Path) -> None:
    proc = start_cloud(
        "localclouds.ec2", free_port(), tmp_path, "--aws-endpoint", moto, "--regions", "us-east-1"
    )
    try:
        inst = run_instance(moto, "123456789012", "ap-southeast-2")
        base = f"{proc.base}/vm/123456789012/ap-southeast-2/{inst['InstanceId']}"
        token = httpx.put(
            f"{base}/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
        ).text
        assert (
            httpx.get(
                f"{base}/latest/dynamic/instance-identity/rsa2048",
                headers={"X-aws-ec2-metadata-token": token},
            ).status_code
            == 200
        )
        before = _fingerprints(tmp_path / "ec2")
        # us-east-1 prepared at start, ap-southeast-2 issued on first use; all three forms each.
        assert {k for k in before if k.startswith("certs/")} == {
            f"certs/{form}/{region}.pem"
            for form in ("rsa2048", "rsa", "dsa")
            for region in ("us-east-1", "ap-southeast-2")
        }
    finally:
        first_exit = proc.stop()
    assert first_exit == 0
    again = start_cloud(
        "localclouds.ec2", free_port(), tmp_path, "--aws-endpoint", moto, "--regions", "us-east-1"
    )
    try:
        assert _fingerprints(tmp_path / "ec2") == before
        stale = httpx.get(
            f"{again.base}/vm/123456789012/ap-southeast-2/{inst['InstanceId']}"
            "/latest/meta-data/instance-id",
            headers={"X-aws-ec2-metadata-token": token},
        )
        assert stale.status_code == 401  # session tokens do not survive a restart, as on EC2
    finally:
        assert again.stop() == 0

"""Real processes: the local Azure cloud, a moto server and the local EC2 IMDS on free ports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from localclouds import azure as local_azure
from tests.unit.localclouds_azure_ec2.procs import Process, free_port, start_cloud, start_moto

#: Variables that would make azure-identity use something other than the local cloud.
FOREIGN_AZURE_VARS = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IMDS_ENDPOINT",
    "IDENTITY_SERVER_THUMBPRINT",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
)


@dataclass
class AzureCloud:
    state_dir: Path
    imds: Process
    arm_port: int

    @property
    def env(self) -> dict[str, str]:
        return local_azure.worker_env(
            self.state_dir, "127.0.0.1", self.imds.port, arm_port=self.arm_port
        )

    def imds_url(self, vm: str) -> str:
        return f"{self.imds.base}/vm/{vm}"


def start_azure(state_dir: Path) -> AzureCloud:
    # The product's credential is azure-identity's; until pyproject lists it, say so visibly.
    pytest.importorskip("azure.identity", reason="azure-identity is not installed")
    arm_port = free_port()
    proc = start_cloud("localclouds.azure", free_port(), state_dir, "--arm-port", str(arm_port))
    return AzureCloud(state_dir, proc, arm_port)


@pytest.fixture(scope="module")
def azure_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureCloud]:
    cloud = start_azure(tmp_path_factory.mktemp("azure-state"))
    yield cloud
    cloud.imds.stop()


@pytest.fixture
def azure_env(azure_cloud: AzureCloud, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The process environment a worker gets from ``worker_env``, and nothing foreign."""
    for name in FOREIGN_AZURE_VARS:
        monkeypatch.delenv(name, raising=False)
    env = azure_cloud.env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    proc = start_moto(port, tmp_path_factory.mktemp("moto") / "moto.log")
    yield proc.base
    proc.stop()


@dataclass
class Ec2Cloud:
    state_dir: Path
    imds: Process
    moto: str

    def base(self, account: str, region: str, instance_id: str) -> str:
        return f"{self.imds.base}/vm/{account}/{region}/{instance_id}"


@pytest.fixture(scope="module")
def ec2_cloud(moto: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ec2Cloud]:
    state = tmp_path_factory.mktemp("ec2-state")
    proc = start_cloud("localclouds.ec2", free_port(), state, "--aws-endpoint", moto)
    yield Ec2Cloud(state, proc, moto)
    proc.stop()


def account_session(moto: str, account: str) -> boto3.session.Session:
    """A session whose calls moto attributes to ``account`` (credentials from AssumeRole)."""
    sts = boto3.client(
        "sts",
        region_name="us-east-1",
        endpoint_url=moto,
        aws_access_key_id="AKIATESTBASE00000000",
        aws_secret_access_key="test",
    )
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/fleet-simulator", RoleSessionName="tests"
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def run_instance(
    moto: str, account: str, region: str, tags: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    ec2 = account_session(moto, account).client("ec2", region_name=region, endpoint_url=moto)
    spec: dict[str, Any] = {
        "ImageId": "ami-12c6146b",
        "MinCount": 1,
        "MaxCount": 1,
        "InstanceType": "t3.micro",
    }
    if tags:
        spec["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    inst = ec2.run_instances(**spec, **extra)["Instances"][0]
    return ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"][
        0
    ]


def new_account() -> str:
    """A fresh 12-digit account id, so tests never see each other's instances."""
    return str(uuid.uuid4().int)[:12].rjust(12, "1")

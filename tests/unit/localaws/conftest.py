"""One local AWS server (a real subprocess) for the whole folder, driven only over the wire.

Tests isolate themselves by working in fresh accounts: STS AssumeRole into a new account id
yields credentials that moto (and therefore our handlers) map to that account.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from localclouds.aws import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from localclouds.aws.agent_client import AgentClient, AgentSession

REPO = Path(__file__).resolve().parents[3]
PING_TIMEOUT = 60
CREATE_ACCOUNT_DELAY = 30
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalAws:
    endpoint: str

    def client(self, service: str, session: boto3.Session | None = None,
               config: Config | None = None) -> Any:
        session = session or management_session()
        return session.client(service, endpoint_url=self.endpoint, region_name=REGION,
                              config=config or NO_RETRIES)

    def new_account(self) -> tuple[str, boto3.Session]:
        """A fresh 12-digit account reached through STS AssumeRole, like a vended account."""
        account_id = "9" + "".join(secrets.choice("0123456789") for _ in range(11))
        return account_id, self.assume(account_id)

    def assume(self, account_id: str, role: str = "OrganizationAccountAccessRole") -> Any:
        sts = self.client("sts")
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/{role}",
                                RoleSessionName="tests")["Credentials"]
        return boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                             aws_secret_access_key=creds["SecretAccessKey"],
                             aws_session_token=creds["SessionToken"])

    def control(self, path: str, method: str, document: Any = None) -> dict[str, Any]:
        data = None if document is None else json.dumps(document).encode()
        request = urllib.request.Request(self.endpoint + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def advance(self, seconds: float) -> None:
        self.control("/__fleetpatch/clock", "POST", {"advance_seconds": seconds})

    def agent(self, ssm: Any, activation: dict[str, str] | None = None,
              platform: tuple[str, str, str] = ("Ubuntu", "Linux", "22.04"),
              ping: bool = True) -> AgentSession:
        """Register one simulated agent (optionally from a given activation) and ping once."""
        if activation is None:
            activation = ssm.create_activation(IamRole="SSMServiceRole")
        client = AgentClient(self.endpoint, REGION)
        registration = client.register(activation["ActivationId"], activation["ActivationCode"])
        session = client.session(registration)
        if ping:
            session.update_instance_information(
                AgentVersion="3.3.1142.0", PlatformName=platform[0], PlatformType=platform[1],
                PlatformVersion=platform[2], ComputerName=registration.instance_id,
                IPAddress="192.0.2.10")
        return session


def management_session() -> boto3.Session:
    return boto3.Session(aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    port = _free_port()
    state_dir = tmp_path_factory.mktemp("state")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    log_path = state_dir / "server.log"  # a file, not a pipe: a full pipe would block the server
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "localclouds.aws", "--host", "127.0.0.1", "--port", str(port),
         "--state-dir", str(state_dir), "--create-account-delay", str(CREATE_ACCOUNT_DELAY),
         "--ping-timeout", str(PING_TIMEOUT)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(endpoint + "/__fleetpatch/health", timeout=1) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.close()
            raise RuntimeError("local AWS did not start: " + log_path.read_text()[-2000:])
        time.sleep(0.1)
    assert (state_dir / "aws").is_dir()
    try:
        yield LocalAws(endpoint)
    finally:
        process.terminate()
        try:
            code = process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
    assert code == 0, "SIGTERM must stop the server cleanly"


@pytest.fixture(autouse=True)
def _no_faults(local_aws: LocalAws) -> Iterator[None]:
    yield
    local_aws.control("/__fleetpatch/faults", "DELETE")


@pytest.fixture
def account(local_aws: LocalAws) -> tuple[str, boto3.Session]:
    return local_aws.new_account()


@pytest.fixture
def ssm(local_aws: LocalAws, account: tuple[str, boto3.Session]) -> Any:
    return local_aws.client("ssm", account[1])

"""The local AWS as a real subprocess, driven only over the wire, for tests that need it.

Each test folder starts its own (``running_local_aws``): some advance the emulator's clock, which
would disturb another folder's agents. Tests isolate themselves by working in fresh accounts:
STS AssumeRole into a new account id yields credentials that the server maps to that account.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from clouds.aws.sessions import AwsSessions
from localclouds.aws import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from localclouds.aws.agent_client import AgentClient, AgentSession
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)


class NoRetrySessions(AwsSessions):
    """AwsSessions with botocore's own retries off: throttling and refusals reach the code under
    test at once."""

    def client(self, service: str, session: Any = None, region: str | None = None) -> Any:
        return (session or self._base).client(
            service, region_name=region or self.region, endpoint_url=self._settings.endpoint_url, config=NO_RETRIES
        )


@dataclass
class LocalAws:
    endpoint: str
    process: subprocess.Popen[bytes] | None = None
    state_dir: Path | None = None

    def agent_trust(self) -> Any:
        """The trust anchor the local default bakes into startup scripts: this local AWS's agent
        signing key (what its worker_env configures)."""
        from clients.startup.agent_trust import load
        from localclouds.aws.agent_signing import ensure_key

        assert self.state_dir is not None, "a local AWS started by running_local_aws"
        signer, public_key = ensure_key(self.state_dir)
        return load(public_key, [signer.fingerprint])

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



@contextmanager
def running_local_aws(state_dir: Path, *, create_account_delay: float, ping_timeout: float,
                      save_interval: float = 5.0) -> Iterator[LocalAws]:
    """Start ``python -m localclouds.aws``, wait until healthy, stop it (and check it stopped
    cleanly, unless the test killed it itself)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    log_path = state_dir / "server.log"  # a file, not a pipe: a full pipe would block the server
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "localclouds.aws", "--host", "127.0.0.1", "--port", str(port),
             "--state-dir", str(state_dir), "--create-account-delay", str(create_account_delay),
             "--ping-timeout", str(ping_timeout), "--save-interval", str(save_interval)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )
        endpoint = f"http://127.0.0.1:{port}"
        code: int | None = None
        try:
            deadline = time.monotonic() + 90  # a loaded machine (the whole suite on 2 cores) starts it slowly
            while True:
                try:
                    with urllib.request.urlopen(endpoint + "/__fleetpatch/health", timeout=1) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("local AWS did not start: " + log_path.read_text()[-2000:])
                time.sleep(0.1)
            yield LocalAws(endpoint, process, state_dir)
        finally:
            killed = process.poll() is not None and process.returncode < 0
            process.terminate()
            try:
                code = process.wait(timeout=30)  # a clean stop saves the state: slow on a loaded machine
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=5)
    assert killed or code == 0, "SIGTERM must stop the local AWS cleanly"

"""Fixtures for the fleet tests: one real local AWS process for the folder (shared with the
localaws tests' fixture code), a thread pool for agents."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.local_aws import LocalAws
from tests.support.processes import wait_healthy
from tests.unit.localaws.conftest import local_aws  # noqa: F401 - the fixture itself

__all__ = ["LocalAws"]


@pytest.fixture(scope="session")
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="agents") as executor:
        yield executor


# --- the real local clouds, for the startup-script tests ----------------------------------------

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from tests.unit.localclouds_azure_ec2.procs import free_port, start_cloud  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


def _vcenter(state: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    from localclouds.vcsim import describe as describe_vcsim
    from localclouds.vcsim.build import VcsimUnavailable, ensure_built

    try:
        binary = ensure_built()
    except VcsimUnavailable as err:
        pytest.skip(f"vcsim cannot be built here: {err}")
    port, guest_port = free_port(), free_port()
    log = (state / "vcsim.out").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "localclouds.vcsim", "--host", "127.0.0.1", "--port", str(port),
         "--state-dir", str(state), "--guest-port", str(guest_port), "--binary", str(binary)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
    log.close()
    described = describe_vcsim(state, "127.0.0.1", port, guest_port=guest_port)
    wait_healthy(proc, described["health_url"], "the local vCenter", timeout=60,
                 output=lambda: (state / "vcsim.out").read_text()[-2000:])
    return proc, described


@pytest.fixture(scope="session")
def clouds(tmp_path_factory: pytest.TempPathFactory, local_aws: LocalAws) -> Iterator[dict[str, Any]]:
    """Every local cloud on free ports, described as ``.fleetpatch/local.json`` describes them
    (without ``api``: each test puts its own fake or real API there)."""
    from localclouds import azure as local_azure
    from localclouds import ec2 as local_ec2
    from localclouds import gcp as local_gcp
    from localclouds.gcp.app import create_app
    from tests.unit.gcp.serving import serve

    state = tmp_path_factory.mktemp("clouds")
    arm_port = free_port()
    azure = start_cloud("localclouds.azure", free_port(), state, "--arm-port", str(arm_port))
    ec2 = start_cloud("localclouds.ec2", free_port(), state, "--aws-endpoint", local_aws.endpoint)
    vcsim, vcenter = _vcenter(state)
    try:
        with serve(create_app(state)) as gcp_base:
            gcp_port = int(gcp_base.rsplit(":", 1)[1])
            yield {
                "state_dir": str(state),
                "aws": local_aws.endpoint,
                "aws_details": {"endpoint": local_aws.endpoint, "region": "us-east-1"},
                "gcp": local_gcp.describe(state, "127.0.0.1", gcp_port),
                "azure": local_azure.describe(state, "127.0.0.1", azure.port, arm_port=arm_port),
                "ec2": local_ec2.describe(state, "127.0.0.1", ec2.port),
                "vcenter": vcenter,
            }
    finally:
        azure.stop()
        ec2.stop()
        vcsim.terminate()
        vcsim.wait(timeout=15)


# --- a fake fleetpatch API ------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering (a network error)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeApi:
    """Answers from per-route queues (the last answer of a queue repeats); records requests."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                with api.lock:
                    api.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                    queue = api.routes.get((self.command, path)) or [Answer(404, {"error": "NotFound", "reason": path})]
                    answer = queue.pop(0) if len(queue) > 1 else queue[0]
                if answer.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if callable(answer.body):
                    answer = answer.body(body)
                text = isinstance(answer.body, str | bytes)  # bytes: served as they are (a download)
                data = (answer.body if isinstance(answer.body, bytes) else answer.body.encode() if text
                        else json.dumps(answer.body).encode() if answer.body is not None else b"")
                self.send_response(answer.status)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.routes[(method, path)] = list(answers)

    def posts(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    yield api
    api.close()


__all__ += ["Answer", "FakeApi", "os"]


def enroll_with_activations(ssm: Any, account_id: str, group: str, tags: list[dict[str, str]] | None = None) -> Any:
    """A fake API's registration answer: EC2 needs no activation; every other VM gets a real one
    from the local AWS (``ssm`` of ``account_id``), so its agent can register."""
    from localclouds.aws import REGION

    def enroll(body: bytes) -> Answer:
        request = json.loads(body)
        if request["provider"] == "aws":
            return Answer(201, {"enrollment_id": "e", "activation": None, "systems_account": "x",
                                "patch_group": "on-time", "managed_instance_id": "i"})
        created = ssm.create_activation(IamRole="SSMServiceRole", DefaultInstanceName=request["hostname"],
                                        **({"Tags": tags} if tags else {}))
        return Answer(201, {"enrollment_id": "e", "systems_account": account_id, "patch_group": group,
                            "managed_instance_id": None, "activation": {
                                "id": created["ActivationId"], "code": created["ActivationCode"], "region": REGION}})

    return enroll

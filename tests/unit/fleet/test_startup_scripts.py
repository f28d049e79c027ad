"""The bash startup script against the real local metadata services and a fake API: each
provider's request shape, 201/202/4xx/503/network errors, and the activation code never shown."""

from __future__ import annotations

import base64
import itertools
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clients import startup
from clouds.azure.verify import peek_azure_instance_key
from clouds.ec2.verify import peek_ec2_instance_key
from clouds.gcp.jwks import RemoteJwks
from clouds.gcp.verify import verify_gcp_token
from clouds.vmware.token import verify_token
from contracts.providers import OsFamily, PatchGroup, Provider
from localclouds.fleet import customers
from localclouds.fleet.platforms import PLATFORMS
from localclouds.fleet.provision import CreatedVm, Endpoints, Provisioner
from tests.unit.fleet.conftest import Answer, FakeApi, LocalAws

AUDIENCE = "https://fleetpatch.example/v1/registrations"
CODE = "Fz9+QmX/ab12CD34ef56"
ACTIVATION = {"id": "3f2a4b6c-1d2e-4f50-8a9b-0c1d2e3f4a5b", "code": CODE, "region": "us-east-1"}
ENROLLED = {"enrollment_id": "e-123", "activation": ACTIVATION, "systems_account": "444455556666",
            "patch_group": "early", "managed_instance_id": None}
_numbers = itertools.count(1_000_000)  # the host tests number their VMs below this

RECORDING_AGENT = """#!/bin/sh
printf '%s\\n' "$@" > "$RECORD_DIR/agent.args"
echo "Successfully registered the instance"
"""
RECORDING_SYSTEMCTL = """#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD_DIR/systemctl.calls"
"""


def _create(clouds: dict[str, Any], provider: Provider, os_family: OsFamily = OsFamily.UBUNTU) -> CreatedVm:
    plan = customers.VmPlan(next(_numbers), provider, customers.customer(0), os_family, PatchGroup.EARLY)
    local = {**clouds, "api": "http://127.0.0.1:9"}
    return Provisioner(Endpoints(local), Path(clouds["state_dir"])).create(plan)


def _run(tmp_path: Path, vm: CreatedVm, api: str, os_family: OsFamily = OsFamily.UBUNTU,
         agent: str = RECORDING_AGENT, **env: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("amazon-ssm-agent", agent), ("systemctl", RECORDING_SYSTEMCTL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "os-release").write_text(PLATFORMS[os_family].os_release())
    path = [str(bin_dir)]
    base = {
        "FLEETPATCH_API_URL": api, "FLEETPATCH_METADATA_URL": vm.metadata_url,
        "FLEETPATCH_OS_RELEASE": str(tmp_path / "os-release"), "FLEETPATCH_HOSTNAME": vm.name,
        "FLEETPATCH_RETRY_BASE": "0.05", "FLEETPATCH_RETRY_CAP": "3", "FLEETPATCH_MAX_ATTEMPTS": "4",
        "RECORD_DIR": str(tmp_path),
    }
    if "bios_uuid" in vm.extra:
        (tmp_path / "product_uuid").write_text(vm.extra["bios_uuid"].upper() + "\n")
        base["FLEETPATCH_BIOS_UUID_PATH"] = str(tmp_path / "product_uuid")
        base["FLEETPATCH_GUEST_TOOLS_URL"] = vm.extra["guest_tools_url"]
        path.append(vm.extra["rpctool_dir"])
    script = tmp_path / "startup.sh"
    script.write_text(startup.render(vm.provider, "linux", "https://fleetpatch.example", AUDIENCE))
    full_env = {"PATH": ":".join([*path, "/usr/bin:/bin"]), "LANG": "C.UTF-8", **base, **env}
    result = subprocess.run(["bash", str(script)], env=full_env, capture_output=True, text=True, timeout=60)
    assert CODE not in result.stdout + result.stderr, "the activation code must never be printed"
    return result


def _registration(api: FakeApi) -> dict[str, Any]:
    (post,) = [s for s in api.posts() if s.path == "/v1/registrations"]
    return post.json()


def _agent_args(tmp_path: Path) -> list[str]:
    return (tmp_path / "agent.args").read_text().split()


def test_gcp_token_from_the_metadata_server(clouds: dict[str, Any], fake_api: FakeApi, tmp_path: Path) -> None:
    vm = _create(clouds, Provider.GCP)
    fake_api.on("POST", "/v1/registrations", Answer(201, ENROLLED))
    result = _run(tmp_path, vm, fake_api.url)
    assert result.returncode == 0, result.stderr
    body = _registration(fake_api)
    assert set(body) == {"provider", "identity", "hostname", "platform"}
    assert (body["provider"], body["hostname"]) == ("gcp", vm.name)
    assert body["platform"] == {"os": "ubuntu", "version": "22.04"}
    identity = verify_gcp_token(body["identity"]["token"], keys=RemoteJwks.for_url(clouds["gcp"]["jwks_url"]),
                                audience=AUDIENCE, now=datetime.now(UTC))
    assert identity.instance_key == vm.instance_key
    assert _agent_args(tmp_path) == ["-register", "-code", CODE, "-id", ACTIVATION["id"], "-region", "us-east-1", "-y"]
    calls = (tmp_path / "systemctl.calls").read_text().splitlines()
    assert calls[-1] == "restart amazon-ssm-agent" and "stop amazon-ssm-agent" in calls
    assert "enrolled: systems account 444455556666" in result.stderr
    assert "e-123" not in result.stderr, "the enrollment id carries a secret: never printed"


def test_azure_nonce_attested_document_and_resource_id(clouds: dict[str, Any], fake_api: FakeApi,
                                                       tmp_path: Path) -> None:
    vm = _create(clouds, Provider.AZURE)
    fake_api.on("GET", "/v1/challenge", Answer(503, {"error": "TemporalUnavailable", "reason": "x"}),
                Answer(200, {"nonce": "abc123XYZ", "expires_at": "2030-01-01T00:00:00Z"}))
    fake_api.on("POST", "/v1/registrations", Answer(201, ENROLLED))
    result = _run(tmp_path, vm, fake_api.url, OsFamily.RHEL)
    assert result.returncode == 0, result.stderr
    body = _registration(fake_api)
    identity = body["identity"]
    assert identity["nonce"] == "abc123XYZ" and identity["attested"]["encoding"] == "pkcs7"
    assert re.fullmatch(r"/subscriptions/[0-9a-f-]{36}/resourceGroups/fleetpatch-demo/providers/"
                        r"Microsoft.Compute/virtualMachines/" + vm.name, identity["resource_id"])
    assert peek_azure_instance_key(identity["attested"], identity["resource_id"]) == (vm.cloud_account, vm.instance_id)
    assert body["platform"] == {"os": "rhel", "version": "8.9"}
    assert len([s for s in fake_api.seen if s.path == "/v1/challenge"]) == 2  # retried the 503


def test_ec2_imdsv2_rsa2048_and_no_activation(clouds: dict[str, Any], fake_api: FakeApi, tmp_path: Path) -> None:
    vm = _create(clouds, Provider.AWS, OsFamily.AMAZON_LINUX_2)
    fake_api.on("POST", "/v1/registrations", Answer(201, {**ENROLLED, "activation": None,
                                                          "managed_instance_id": vm.instance_id}))
    result = _run(tmp_path, vm, fake_api.url, OsFamily.AMAZON_LINUX_2)
    assert result.returncode == 0, result.stderr
    body = _registration(fake_api)
    assert peek_ec2_instance_key(body["identity"]) == (vm.cloud_account, vm.instance_id)
    assert base64.b64decode(body["identity"]["rsa2048"].replace("\n", ""))[:1] == b"\x30"
    assert body["platform"] == {"os": "amazon-linux-2", "version": "2"}
    assert not (tmp_path / "agent.args").exists()  # EC2: nothing to register
    assert (tmp_path / "systemctl.calls").read_text().splitlines()[-1] == "restart amazon-ssm-agent"


def test_ec2_token_request_retries_a_failing_metadata_service(clouds: dict[str, Any], fake_api: FakeApi,
                                                             tmp_path: Path) -> None:
    """An IMDS that answers 500, then refuses to answer, is asked again; a 4xx is final."""
    vm = _create(clouds, Provider.AWS, OsFamily.AMAZON_LINUX_2)
    imds = CreatedVm(vm.provider, vm.name, vm.cloud_account, vm.instance_id, f"{fake_api.url}/imds")
    fake_api.on("PUT", "/imds/latest/api/token", Answer(500, "busy"), Answer(200, "token-1"))
    fake_api.on("GET", "/imds/latest/dynamic/instance-identity/rsa2048", Answer(200, "MIAGCSqG"))
    fake_api.on("POST", "/v1/registrations", Answer(201, {**ENROLLED, "activation": None,
                                                          "managed_instance_id": vm.instance_id}))
    result = _run(tmp_path, imds, fake_api.url, OsFamily.AMAZON_LINUX_2)
    assert result.returncode == 0, result.stderr
    puts = [s for s in fake_api.seen if s.method == "PUT"]
    assert len(puts) == 2
    (read,) = [s for s in fake_api.seen if s.path.endswith("/rsa2048")]
    assert read.headers["X-aws-ec2-metadata-token"] == "token-1"
    assert _registration(fake_api)["identity"] == {"rsa2048": "MIAGCSqG"}

    fake_api.seen.clear()
    fake_api.on("PUT", "/imds/latest/api/token", Answer(403, "proxied"))
    refused = _run(tmp_path, imds, fake_api.url, OsFamily.AMAZON_LINUX_2)
    assert refused.returncode == 1 and "IMDSv2 token request failed (HTTP 403)" in refused.stderr
    assert len([s for s in fake_api.seen if s.method == "PUT"]) == 1
    assert fake_api.posts() == []


def test_ec2_metadata_is_served_while_the_ec2_api_is_throttled(clouds: dict[str, Any], fake_api: FakeApi,
                                                               local_aws: LocalAws, tmp_path: Path) -> None:
    """Faults injected into the local AWS are for the product's calls: the local IMDS, which reads
    its instance from the local AWS, keeps answering as a real IMDS does."""
    vm = _create(clouds, Provider.AWS, OsFamily.AMAZON_LINUX_2)
    fake_api.on("POST", "/v1/registrations", Answer(201, {**ENROLLED, "activation": None,
                                                          "managed_instance_id": vm.instance_id}))
    for service in ("ec2", "sts"):
        local_aws.control("/__fleetpatch/faults", "POST", {"service": service, "throttle_rate": 1.0})
    try:
        result = _run(tmp_path, vm, fake_api.url, OsFamily.AMAZON_LINUX_2)
        still_throttled = local_aws.control("/__fleetpatch/faults", "GET")["rules"]
    finally:
        local_aws.control("/__fleetpatch/faults", "DELETE")
    assert result.returncode == 0, result.stderr
    assert peek_ec2_instance_key(_registration(fake_api)["identity"]) == (vm.cloud_account, vm.instance_id)
    assert len(still_throttled) == 2


def test_vmware_guestinfo_token_and_bios_uuid(clouds: dict[str, Any], fake_api: FakeApi, tmp_path: Path) -> None:
    vm = _create(clouds, Provider.VMWARE, OsFamily.WINDOWS)
    fake_api.on("POST", "/v1/registrations", Answer(201, ENROLLED))
    result = _run(tmp_path, vm, fake_api.url, OsFamily.WINDOWS)
    assert result.returncode == 0, result.stderr
    body = _registration(fake_api)
    assert body["identity"]["bios_uuid"] == vm.extra["bios_uuid"].lower()
    public = Path(clouds["vcenter"]["public_key"]).read_text()
    token = verify_token(body["identity"]["token"], public_keys=[public],
                         vcenter_id=clouds["vcenter"]["vcenter_id"], now=datetime.now(UTC))
    assert token.instance_uuid == vm.instance_id
    assert body["platform"] == {"os": "windows", "version": "2022"}


def test_retries_503_with_retry_after_and_network_errors(clouds: dict[str, Any], fake_api: FakeApi,
                                                         tmp_path: Path) -> None:
    vm = _create(clouds, Provider.GCP)
    fake_api.on("POST", "/v1/registrations",
                Answer(503, {"error": "TemporalUnavailable", "reason": "later"}, {"Retry-After": "1"}),
                Answer(0, drop=True), Answer(429, {"error": "Throttled", "reason": "slow down"}),
                Answer(201, ENROLLED))
    started = time.monotonic()
    result = _run(tmp_path, vm, fake_api.url)
    assert result.returncode == 0, result.stderr
    assert len(fake_api.posts()) == 4
    assert time.monotonic() - started >= 1.0, "Retry-After: 1 must be waited"
    assert "API answered 503" in result.stderr and "API unreachable" in result.stderr


def test_a_running_earlier_attempt_is_waited_for(clouds: dict[str, Any], fake_api: FakeApi, tmp_path: Path) -> None:
    # The answer to an earlier attempt was lost: its enrollment still runs (409 EnrollmentRunning)
    # until it ends; the script keeps trying instead of giving up on the VM.
    vm = _create(clouds, Provider.GCP)
    fake_api.on("POST", "/v1/registrations",
                Answer(409, {"error": "EnrollmentRunning", "reason": "already running"}, {"Retry-After": "1"}),
                Answer(201, ENROLLED))
    result = _run(tmp_path, vm, fake_api.url)
    assert result.returncode == 0, result.stderr
    assert len(fake_api.posts()) == 2
    assert "still enrolling" in result.stderr


def test_every_api_call_retries_through_an_api_restart(clouds: dict[str, Any], fake_api: FakeApi,
                                                       tmp_path: Path) -> None:
    # Azure: the challenge, the registration and the poll each meet a restarting API.
    vm = _create(clouds, Provider.AZURE)
    fake_api.on("GET", "/v1/challenge", Answer(0, drop=True), Answer(502, {"error": "x", "reason": "y"}),
                Answer(200, {"nonce": "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"}))
    fake_api.on("POST", "/v1/registrations", Answer(0, drop=True),
                Answer(202, {"enrollment_id": "e-7", "state": "vending"}, {"Location": "/v1/enrollments/e-7"}))
    fake_api.on("GET", "/v1/enrollments/e-7", Answer(0, drop=True), Answer(503, {"error": "x", "reason": "y"}),
                Answer(200, ENROLLED))
    result = _run(tmp_path, vm, fake_api.url)
    assert result.returncode == 0, result.stderr
    seen = [s.path for s in fake_api.seen]
    assert seen.count("/v1/challenge") >= 3 and seen.count("/v1/enrollments/e-7") == 3
    assert "e-7" not in result.stderr and "e-123" not in result.stderr


def test_retries_are_bounded_in_total_time(clouds: dict[str, Any], fake_api: FakeApi, tmp_path: Path) -> None:
    vm = _create(clouds, Provider.GCP)
    fake_api.on("POST", "/v1/registrations", Answer(503, {"error": "TemporalUnavailable", "reason": "down"},
                                                    {"Retry-After": "2"}))
    started = time.monotonic()
    result = _run(tmp_path, vm, fake_api.url, FLEETPATCH_MAX_ATTEMPTS="40", FLEETPATCH_RETRY_DEADLINE="3")
    assert result.returncode == 3 and "FLEETPATCH_RETRY_DEADLINE=3s" in result.stderr
    assert time.monotonic() - started < 10 and len(fake_api.posts()) <= 3


def test_gives_up_after_max_attempts(clouds: dict[str, Any], fake_api: FakeApi, tmp_path: Path) -> None:
    vm = _create(clouds, Provider.GCP)
    fake_api.on("POST", "/v1/registrations", Answer(503, {"error": "TemporalUnavailable", "reason": "down"}))
    result = _run(tmp_path, vm, fake_api.url, FLEETPATCH_MAX_ATTEMPTS="3")
    assert result.returncode == 3 and len(fake_api.posts()) == 3


@pytest.mark.parametrize(("status", "error"), [(400, "BadRequest"), (401, "IdentitySignatureInvalid"),
                                               (403, "TenantNotLinked"), (409, "AlreadyEnrolled"),
                                               (413, "TooLarge")])
def test_stops_on_4xx_with_the_servers_reason(clouds: dict[str, Any], fake_api: FakeApi, tmp_path: Path,
                                              status: int, error: str) -> None:
    vm = _create(clouds, Provider.GCP)
    fake_api.on("POST", "/v1/registrations",
                Answer(status, {"error": error, "reason": f"the \"{error}\" reason"}))
    result = _run(tmp_path, vm, fake_api.url)
    assert result.returncode == 2
    assert len(fake_api.posts()) == 1
    assert f'registration refused (HTTP {status} {error}): the "{error}" reason' in result.stderr
    assert not (tmp_path / "agent.args").exists()


def test_202_then_polls_the_location(clouds: dict[str, Any], fake_api: FakeApi, tmp_path: Path) -> None:
    vm = _create(clouds, Provider.GCP)
    fake_api.on("POST", "/v1/registrations",
                Answer(202, {"enrollment_id": "e-9", "state": "vending"}, {"Location": "/v1/enrollments/e-9"}))
    fake_api.on("GET", "/v1/enrollments/e-9", Answer(202, {"enrollment_id": "e-9", "state": "vending"}),
                Answer(503, {"error": "TemporalUnavailable", "reason": "x"}), Answer(200, ENROLLED))
    result = _run(tmp_path, vm, fake_api.url)
    assert result.returncode == 0, result.stderr
    assert len([s for s in fake_api.seen if s.path == "/v1/enrollments/e-9"]) == 3
    assert _agent_args(tmp_path)[:3] == ["-register", "-code", CODE]
    fake_api.on("GET", "/v1/enrollments/e-9", Answer(401, {"error": "IdentityExpired", "reason": "too old"}))
    fake_api.on("POST", "/v1/registrations",
                Answer(202, {"enrollment_id": "e-9", "state": "vending"}, {"Location": "/v1/enrollments/e-9"}))
    refused = _run(tmp_path, vm, fake_api.url)
    assert refused.returncode == 2 and "IdentityExpired): too old" in refused.stderr


def test_a_failing_agent_registration_never_shows_the_code(clouds: dict[str, Any], fake_api: FakeApi,
                                                          tmp_path: Path) -> None:
    vm = _create(clouds, Provider.GCP)
    fake_api.on("POST", "/v1/registrations", Answer(201, ENROLLED))
    leaky = "#!/bin/sh\necho \"cannot register with code $3 (id $5)\"\nexit 1\n"
    result = _run(tmp_path, vm, fake_api.url)
    assert result.returncode == 0  # the recording stand-in succeeded; now a leaky, failing one
    (tmp_path / "bin" / "amazon-ssm-agent").write_text(leaky)
    script = tmp_path / "startup.sh"
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "FLEETPATCH_API_URL": fake_api.url,
           "FLEETPATCH_METADATA_URL": vm.metadata_url, "FLEETPATCH_OS_RELEASE": str(tmp_path / "os-release"),
           "RECORD_DIR": str(tmp_path)}
    failed = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1 and "failed with 3 activations; giving up" in failed.stderr
    assert len([s for s in fake_api.posts() if s.path == "/v1/registrations"]) == 1 + 3  # the first run, then 3 here
    assert CODE not in failed.stdout + failed.stderr
    assert "cannot register with code <redacted>" in failed.stderr


def test_an_activation_the_agent_cannot_use_is_replaced_by_registering_again(
        clouds: dict[str, Any], fake_api: FakeApi, tmp_path: Path) -> None:
    """A used or expired activation fails ``amazon-ssm-agent -register``: the script registers
    again (the running enrollment answers with a fresh activation) and registers with that one."""
    vm = _create(clouds, Provider.GCP)
    fresh = {**ACTIVATION, "id": "9e8d7c6b-5a49-4382-9171-605f4e3d2c1b", "code": CODE + "2"}
    fake_api.on("POST", "/v1/registrations", Answer(201, ENROLLED), Answer(201, {**ENROLLED, "activation": fresh}))
    picky = ("#!/bin/sh\n"
             f"[ \"$3\" = '{CODE}' ] && {{ echo 'ActivationExpired'; exit 1; }}\n"
             "printf '%s\\n' \"$@\" > \"$RECORD_DIR/agent.args\"\n")
    result = _run(tmp_path, vm, fake_api.url, agent=picky)
    assert result.returncode == 0, result.stderr
    assert len([s for s in fake_api.posts() if s.path == "/v1/registrations"]) == 2
    assert _agent_args(tmp_path)[:5] == ["-register", "-code", fresh["code"], "-id", fresh["id"]]
    assert "registering again for a fresh activation (1 of 2)" in result.stderr
    assert fresh["code"] not in result.stdout + result.stderr


def test_unsupported_os_and_unreadable_metadata(clouds: dict[str, Any], fake_api: FakeApi, tmp_path: Path) -> None:
    vm = _create(clouds, Provider.GCP)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "os-release").write_text('ID=gentoo\nVERSION_ID="2.15"\n')
    result = _run(tmp_path, vm, fake_api.url, FLEETPATCH_OS_RELEASE=str(tmp_path / "other" / "os-release"))
    assert result.returncode == 1 and "unsupported operating system 'gentoo'" in result.stderr
    assert fake_api.posts() == []
    gone = CreatedVm(Provider.GCP, "no-such-vm", "p", "1", vm.metadata_url.rsplit("/", 1)[0] + "/no-such-vm")
    missing = _run(tmp_path, gone, fake_api.url)
    assert missing.returncode == 1 and "metadata service did not answer" in missing.stderr


def test_render_bakes_in_safe_values_only() -> None:
    text = startup.render("azure", "linux", "https://api.example/", AUDIENCE)
    assert "PROVIDER='azure'" in text and 'FLEETPATCH_API_URL:-https://api.example}' in text
    assert "@@" not in text
    for bad in ("https://x.example/'; rm -rf /", "https://x.example/$(id)", "ftp://x.example",
                "https://x.example/`id`", "https://x.example/\nid"):
        with pytest.raises(ValueError):
            startup.render("gcp", "linux", bad, AUDIENCE)
        with pytest.raises(ValueError):
            startup.render("gcp", "linux", "https://x.example", bad)
    with pytest.raises(ValueError):
        startup.render("oracle-cloud", "linux", "https://x.example", AUDIENCE)


def test_shell_syntax_and_shellcheck() -> None:
    assert subprocess.run(["bash", "-n", "-c", startup.template("linux")]).returncode == 0
    shellcheck = __import__("shutil").which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (scripts/install-system-deps.sh installs it)")
    sources = [Path(startup.__file__).parent / "register.sh",
               *sorted((Path(customers.__file__).parent / "bin").iterdir())]
    checked = subprocess.run([shellcheck, *map(str, sources)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout


def test_powershell_script_structure() -> None:
    """pwsh is not available here: check what can be checked without running it."""
    text = startup.render("aws", "windows", "https://api.example", AUDIENCE)
    assert "@@" not in text and "$Provider = 'aws'" in text
    for needle in ("/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds",
                   "/latest/dynamic/instance-identity/rsa2048", "/computeMetadata/v1/instance/service-accounts/default/identity",
                   "'Metadata-Flavor' = 'Google'", "/metadata/attested/document?api-version=2020-09-01&nonce=",
                   "/metadata/instance/compute/resourceId?api-version=2021-02-01&format=text",
                   "info-get guestinfo.fleetpatch.token", "Win32_ComputerSystemProduct", "/v1/registrations",
                   "/v1/challenge", "-register -code", "Restart-Service", "Retry-After", "Stop-Script 2",
                   "Request-FreshActivation", "$script:RegisterFailed = $true"):
        assert needle in text, needle
    assert text.count("{") == text.count("}") and text.count("(") == text.count(")")
    assert startup.media_type("windows").startswith("text/plain")

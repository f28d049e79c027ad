"""localclouds.vcsim: describe/worker_env, keys, and the wrapper process end to end."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from clouds.vmware.biosuuid import parse_uuid, swap_first_fields
from clouds.vmware.token import verify_token
from clouds.vmware.vsphere import VcenterEndpoint, VsphereClient
from config.settings import Settings
from localclouds.vcsim import RPCTOOL, VCENTER_ID, describe, worker_env
from localclouds.vcsim.build import ensure_built
from localclouds.vcsim.keys import ensure_keys
from tests.conftest import free_port as _free_port
from tests.support.processes import wait_healthy

REPO = Path(__file__).resolve().parents[3]




def test_describe_and_worker_env_are_pure(tmp_path: Path) -> None:
    state = tmp_path / "never-created"
    d = describe(state, "127.0.0.1", 8706)
    assert d["url"] == "http://127.0.0.1:8706/sdk"
    assert d["vcenter_id"] == VCENTER_ID
    assert d["health_url"] == "http://127.0.0.1:8707/__fleetpatch/health"
    assert d["guest_tools"] == "http://127.0.0.1:8707/vm/{name}"
    assert d["signing_key"] == str(state / "vcsim" / "signing_key.pem")
    assert d["public_key"] == str(state / "vcsim" / "public_key.pem")
    assert Path(d["rpctool"]).is_file()
    assert describe(state, "127.0.0.1", 9000, guest_port=9100)["health_url"].startswith("http://127.0.0.1:9100/")
    env = worker_env(state, "127.0.0.1", 8706)
    assert set(env) == {"FLEETPATCH_VMWARE__VCENTERS"}
    assert not state.exists()


def test_worker_env_configures_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in worker_env(tmp_path, "127.0.0.1", 8706).items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    vc = settings.vmware.vcenters[VCENTER_ID]
    assert vc.url == "http://127.0.0.1:8706/sdk"
    assert vc.signing_key_file == tmp_path / "vcsim" / "signing_key.pem"
    endpoint = VcenterEndpoint.from_settings(settings.vmware, VCENTER_ID)
    assert endpoint is not None and endpoint.connect_kwargs()["protocol"] == "http"
    assert VcenterEndpoint.from_settings(settings.vmware, "other") is None


def test_keys_are_generated_once_and_reused(tmp_path: Path) -> None:
    signing, public = ensure_keys(tmp_path)
    assert stat.S_IMODE(signing.stat().st_mode) == 0o600
    first = (signing.read_text(), public.read_text())
    assert "PRIVATE KEY" in first[0] and "PUBLIC KEY" in first[1]
    ensure_keys(tmp_path)
    assert (signing.read_text(), public.read_text()) == first


def test_build_is_cached(vcsim_binary: Path) -> None:
    started = time.monotonic()
    assert ensure_built() == vcsim_binary
    assert time.monotonic() - started < 5  # up to date: no compiler run


@pytest.fixture
def wrapper(vcsim_binary: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str]]]:
    port, guest_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "localclouds.vcsim", "--host", "127.0.0.1", "--port", str(port),
         "--state-dir", str(tmp_path), "--guest-port", str(guest_port), "--binary", str(vcsim_binary),
         "--customer", "acme", "--label-vms", "DC0_H0_VM0"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    described = describe(tmp_path, "127.0.0.1", port, guest_port=guest_port)
    wait_healthy(proc, described["health_url"], "the local vCenter", output=lambda: proc.stderr.read().decode() if proc.stderr else "")
    try:
        yield proc, described
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.vcsim
def test_wrapper_end_to_end(wrapper: tuple[subprocess.Popen[bytes], dict[str, str]]) -> None:
    proc, d = wrapper
    vcsim_base = d["url"].removesuffix("/sdk")
    assert httpx.get(f"{vcsim_base}/__fleetpatch/health").status_code == 200
    guest = d["guest_tools"]
    public_pem = Path(d["public_key"]).read_text()

    # What the startup script does inside DC0_H0_VM0 (labelled and given a token at start-up).
    env = {**os.environ, "FLEETPATCH_GUEST_TOOLS_URL": guest.format(name="DC0_H0_VM0")}
    out = subprocess.run([str(RPCTOOL), "info-get guestinfo.fleetpatch.token"], env=env,
                         capture_output=True, text=True, check=True)
    token = out.stdout.strip()
    bios = httpx.get(guest.format(name="DC0_H0_VM0") + "/bios-uuid").text.strip()
    now = datetime.now(UTC)
    assert verify_token(token, public_keys=[public_pem], vcenter_id=VCENTER_ID, now=now).customer == "acme"

    endpoint = VcenterEndpoint(url=d["url"], username=d["username"], password=d["password"])
    with VsphereClient(endpoint) as client:
        identity = client.verify_vm_identity(token, bios, vcenter_id=VCENTER_ID,
                                             public_keys=[public_pem], now=now)
        assert identity.instance_name == "DC0_H0_VM0"
        facts = client.vm_facts(client.find_vm_by_name("DC0_H0_VM0"))
        assert bios == facts.bios_uuid
        assert client.custom_attributes(facts.vm) == {"rackspace-addon-patching": "true"}
    legacy = httpx.get(guest.format(name="DC0_H0_VM0") + "/bios-uuid?byte_order=legacy").text.strip()
    assert parse_uuid(legacy) == swap_first_fields(parse_uuid(bios) or b"")

    # An unlabelled VM holds no token: the stand-in answers like the real tool.
    env["FLEETPATCH_GUEST_TOOLS_URL"] = guest.format(name="DC0_H0_VM1")
    missing = subprocess.run([str(RPCTOOL), "info-get guestinfo.fleetpatch.token"], env=env,
                             capture_output=True, text=True)
    assert (missing.returncode, missing.stdout.strip()) == (1, "No value found")
    assert httpx.get(guest.format(name="no-such-vm") + "/bios-uuid").status_code == 404
    bad = subprocess.run([str(RPCTOOL), "info-set guestinfo.x 1"], env=env, capture_output=True)
    assert bad.returncode == 1

    # SIGTERM stops the wrapper and vcsim cleanly.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{vcsim_base}/__fleetpatch/health", timeout=2)


@pytest.mark.vcsim
def test_wrapper_keys_survive_restart(vcsim_binary: Path, tmp_path: Path) -> None:
    """The key the wrapper generated is the one describe() names, and a restart keeps it."""
    signing, public = ensure_keys(tmp_path)
    before = public.read_text()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "localclouds.vcsim", "--port", str(port), "--guest-port", str(_free_port()),
         "--state-dir", str(tmp_path), "--binary", str(vcsim_binary), "--label-vms", ""],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "vcsim" / "vcsim.log").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    assert public.read_text() == before
    assert json.loads(worker_env(tmp_path, "127.0.0.1", port)["FLEETPATCH_VMWARE__VCENTERS"])[VCENTER_ID][
        "signing_key_file"] == str(signing)


def _start_wrapper(binary: Path, state: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    port, guest_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "localclouds.vcsim", "--port", str(port), "--guest-port", str(guest_port),
         "--state-dir", str(state), "--binary", str(binary), "--save-every", "0.5"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    described = describe(state, "127.0.0.1", port, guest_port=guest_port)
    wait_healthy(proc, described["health_url"], "the local vCenter", output=lambda: proc.stderr.read().decode() if proc.stderr else "")
    return proc, described


@pytest.mark.vcsim
def test_a_restart_keeps_the_vms_made_in_the_local_vcenter(vcsim_binary: Path, tmp_path: Path) -> None:
    """What `fleetpatch up` starts (python -m localclouds.vcsim) re-creates, after a restart, the VMs
    the simulated fleet made: same name, folder, instanceUuid, BIOS uuid, labels, token, power."""
    from pyVmomi import vim

    proc, d = _start_wrapper(vcsim_binary, tmp_path)
    try:
        endpoint = VcenterEndpoint(url=d["url"], username=d["username"], password=d["password"])
        with VsphereClient(endpoint) as client:
            source = client.find_vm_by_name("DC0_H0_VM0")
            folder = client.content.rootFolder.childEntity[0].vmFolder.CreateFolder("acme")
            made = {}
            for name, power in (("fleet-vm-1", True), ("fleet-vm-2", False)):
                spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(), powerOn=power, template=False)
                task = source.CloneVM_Task(folder=folder, name=name, spec=spec)
                client._wait(task, "cloning")
                vm = task.info.result
                if not power and client.vm_facts(vm).power_state == "poweredOn":
                    client._wait(vm.PowerOffVM_Task(), "powering off")
                client.set_custom_attribute(vm, "rackspace-addon-patching", "true")
                client.set_custom_attribute(vm, "rackspace-addon-patching-patchgroup", "early")
                client.write_token(vm, f"token-of-{name}")
                made[name] = client.vm_facts(vm)
        time.sleep(1.5)  # at least one periodic save; SIGTERM saves once more
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    saved = tmp_path / "vcsim" / "inventory.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert sorted(v["name"] for v in json.loads(saved.read_text())["vms"]) == ["fleet-vm-1", "fleet-vm-2"]

    proc, d = _start_wrapper(vcsim_binary, tmp_path)
    try:
        endpoint = VcenterEndpoint(url=d["url"], username=d["username"], password=d["password"])
        with VsphereClient(endpoint) as client:
            inside = {f.name: f for f in client.vms_in_scope("DC0/vm/acme")}
            assert sorted(inside) == ["fleet-vm-1", "fleet-vm-2"]
            for name, before in made.items():
                after = client.vm_facts(client.find_vm_by_instance_uuid(before.instance_uuid))
                assert (after.name, after.bios_uuid, after.power_state) == (name, before.bios_uuid, before.power_state)
                assert client.read_token(after.vm) == f"token-of-{name}"
                assert client.custom_attributes(after.vm) == {
                    "rackspace-addon-patching": "true", "rackspace-addon-patching-patchgroup": "early"}
            # The guest reads the same identity as before the restart.
            assert httpx.get(d["guest_tools"].format(name="fleet-vm-1") + "/bios-uuid").text.strip() \
                == made["fleet-vm-1"].bios_uuid
            assert len(client.all_vms()) == 6  # the four built-in VMs, no duplicates
            # By default no built-in VM is labelled for patching (each would never enroll).
            for facts in client.all_vms():
                if facts.name.startswith("DC0_"):
                    assert client.custom_attributes(facts.vm) == {}, facts.name
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0

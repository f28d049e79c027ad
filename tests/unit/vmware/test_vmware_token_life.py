"""A vCenter token's life on a real vcsim: issued by the schedule only where needed, rotated
before it expires, scoped to a customer's folder or resource pool, and enrolling once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clouds.vmware.identity import USED_TOKENS_KEY, used_token_ids
from clouds.vmware.token import verify_token
from clouds.vmware.vsphere import VsphereClient
from contracts.errors import ErrorType, FleetpatchError, IdentityRefused

pytestmark = pytest.mark.vcsim

VC = "vc-local-1"
LABEL = "rackspace-addon-patching"
NOW = datetime.now(UTC).replace(microsecond=0)
TTL = timedelta(hours=1)
ROTATE = timedelta(minutes=25)


def _vm(client: VsphereClient, name: str) -> Any:
    vm = client.find_vm_by_name(name)
    assert vm is not None, name
    return vm


def _label(client: VsphereClient, *names: str) -> None:
    for name in names:
        client.set_custom_attribute(_vm(client, name), LABEL, "true")


def _schedule_run(client: VsphereClient, keys: tuple[str, str], now: datetime, **kw: Any) -> list[str]:
    """What one run of the token schedule issues: names of the VMs that got a new token."""
    args: dict[str, Any] = dict(now=now, ttl=TTL, rotate_before=ROTATE, public_keys=[keys[1]])
    args.update(kw)
    customer = args.pop("customer", "acme")
    return [name for name, _ in client.issue_tokens(VC, customer, keys[0], **args)]


def _verify(client: VsphereClient, token: str, vm: Any, keys: tuple[str, str], **kw: Any) -> Any:
    bios = client.vm_facts(vm).bios_uuid
    return client.verify_vm_identity(token, bios, vcenter_id=VC, public_keys=[keys[1]], now=NOW, **kw)


def test_the_schedule_issues_only_what_is_missing_and_rotates_before_expiry(
    client: VsphereClient, ed_keys: tuple[str, str]
) -> None:
    _label(client, "DC0_H0_VM0", "DC0_H0_VM1")
    assert _schedule_run(client, ed_keys, NOW) == ["DC0_H0_VM0", "DC0_H0_VM1"]
    held = client.read_token(_vm(client, "DC0_H0_VM0"))
    # Ten minutes later every token still has 50 minutes: nothing is rewritten.
    assert _schedule_run(client, ed_keys, NOW + timedelta(minutes=10)) == []
    assert client.read_token(_vm(client, "DC0_H0_VM0")) == held
    # A newly labelled VM gets one on the next run, and only it.
    _label(client, "DC0_C0_RP0_VM0")
    assert _schedule_run(client, ed_keys, NOW + timedelta(minutes=20)) == ["DC0_C0_RP0_VM0"]
    # 40 minutes in, the first two expire within 25 minutes: rotated, the third is not yet.
    later = NOW + timedelta(minutes=40)
    assert _schedule_run(client, ed_keys, later) == ["DC0_H0_VM0", "DC0_H0_VM1"]
    rotated = client.read_token(_vm(client, "DC0_H0_VM0"))
    assert rotated != held
    assert verify_token(rotated, public_keys=[ed_keys[1]], vcenter_id=VC, now=later).expires_at == later + TTL


def test_the_schedule_replaces_tokens_it_cannot_trust(client: VsphereClient, ed_keys: tuple[str, str], es_keys: tuple[str, str]) -> None:
    _label(client, "DC0_H0_VM0")
    vm = _vm(client, "DC0_H0_VM0")
    client.write_token(vm, "not-a-token")
    assert _schedule_run(client, ed_keys, NOW) == ["DC0_H0_VM0"]
    # The link now names another customer: its VMs' tokens are re-issued for it.
    assert _schedule_run(client, ed_keys, NOW, customer="umbrella") == ["DC0_H0_VM0"]
    assert verify_token(client.read_token(vm), public_keys=[ed_keys[1]], vcenter_id=VC, now=NOW).customer == "umbrella"
    # A token signed by a key the link no longer holds is replaced too.
    assert _schedule_run(client, es_keys, NOW, customer="umbrella") == ["DC0_H0_VM0"]
    # The manual trigger (no rotate_before) rewrites every labelled VM's token.
    assert [n for n, _ in client.issue_tokens(VC, "umbrella", es_keys[0], now=NOW, ttl=TTL)] == ["DC0_H0_VM0"]


def _folder(client: VsphereClient, name: str, *vm_names: str) -> str:
    datacenter = client.content.rootFolder.childEntity[0]
    folder = datacenter.vmFolder.CreateFolder(name)
    client._wait(folder.MoveIntoFolder_Task([_vm(client, n) for n in vm_names]), "moving VMs")
    return f"{datacenter.name}/vm/{name}"


def test_tokens_go_only_to_vms_in_the_links_folder(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    _label(client, "DC0_H0_VM0", "DC0_H0_VM1", "DC0_C0_RP0_VM0")
    acme = _folder(client, "acme", "DC0_H0_VM0")
    assert _schedule_run(client, ed_keys, NOW, scope=acme) == ["DC0_H0_VM0"]
    assert client.read_token(_vm(client, "DC0_H0_VM1")) is None
    # A VM outside the folder, even holding a genuine token of this vCenter, does not enroll
    # under the folder's link.
    outside = _vm(client, "DC0_H0_VM1")
    client.issue_tokens(VC, "acme", ed_keys[0], now=NOW, ttl=TTL)
    with pytest.raises(IdentityRefused) as caught:
        _verify(client, client.read_token(outside), outside, ed_keys, scope=acme)
    assert caught.value.type == ErrorType.IDENTITY_OUT_OF_SCOPE
    inside = _vm(client, "DC0_H0_VM0")
    assert _verify(client, client.read_token(inside), inside, ed_keys, scope=acme).instance_name == "DC0_H0_VM0"


def test_tokens_go_only_to_vms_in_the_links_resource_pool(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    _label(client, "DC0_H0_VM0", "DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1")
    pool = "DC0/host/DC0_C0/Resources"
    assert _schedule_run(client, ed_keys, NOW, scope=pool) == ["DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1"]
    assert client.read_token(_vm(client, "DC0_H0_VM0")) is None


def test_a_scope_that_names_nothing_is_a_configuration_error(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    _label(client, "DC0_H0_VM0")
    for scope in ("DC0/vm/no-such-folder", "DC0/vm/DC0_H0_VM0"):  # nothing there; a VM, not a folder
        with pytest.raises(FleetpatchError) as caught:
            _schedule_run(client, ed_keys, NOW, scope=scope)
        assert caught.value.type == ErrorType.CONFIGURATION_INVALID
    assert client.read_token(_vm(client, "DC0_H0_VM0")) is None


def test_a_token_enrolls_once(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    _label(client, "DC0_H0_VM0")
    vm = _vm(client, "DC0_H0_VM0")
    _schedule_run(client, ed_keys, NOW)
    used = client.read_token(vm)
    jti = _verify(client, used, vm, ed_keys).evidence["jti"]
    # The enrollment succeeded: the id is recorded first. Should the replacement never land
    # (a crash between the two writes), the used token is refused all the same.
    client.write_extra_config(vm, USED_TOKENS_KEY, jti)
    with pytest.raises(IdentityRefused) as caught:
        _verify(client, used, vm, ed_keys)
    assert caught.value.type == ErrorType.IDENTITY_TOKEN_USED
    # Retiring it (the enrollment's last step) writes a fresh token; retrying is harmless.
    instance_uuid = client.vm_facts(vm).instance_uuid
    for _ in range(2):
        assert client.retire_token(instance_uuid, jti, vcenter_id=VC, customer="acme", private_pem=ed_keys[0], now=NOW, ttl=TTL)
    assert used_token_ids(client.vm_facts(vm).extra_config) == [jti]
    fresh = client.read_token(vm)
    assert fresh != used
    with pytest.raises(IdentityRefused) as caught:
        _verify(client, used, vm, ed_keys)
    assert caught.value.type == ErrorType.IDENTITY_TOKEN_MISMATCH
    assert _verify(client, fresh, vm, ed_keys).evidence["jti"] != jti
    # The schedule counts a used token as missing (should the replacement have failed).
    client.write_token(vm, used)
    assert _schedule_run(client, ed_keys, NOW) == ["DC0_H0_VM0"]


def test_retiring_the_token_of_a_vm_that_is_gone(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    assert not client.retire_token(
        "00000000-0000-4000-8000-00000000abcd", "jti", vcenter_id=VC, customer="acme", private_pem=ed_keys[0], now=NOW, ttl=TTL
    )

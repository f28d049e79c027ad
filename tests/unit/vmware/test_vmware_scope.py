"""A vCenter shared by several customers, linked per folder or resource pool, on a real vcsim:
tokens go only to the VMs inside the link's scope, and only they verify."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clouds.vmware.vsphere import VsphereClient
from contracts.errors import ErrorType, FleetpatchError, IdentityRefused

pytestmark = pytest.mark.vcsim

VC = "vc-local-1"
LABEL = "rackspace-addon-patching"
NOW = datetime.now(UTC).replace(microsecond=0)
TTL = timedelta(hours=1)
RENEW = timedelta(minutes=20)


def _vm(client: VsphereClient, name: str) -> Any:
    vm = client.find_vm_by_name(name)
    assert vm is not None, name
    return vm


def _label(client: VsphereClient, *names: str) -> None:
    for name in names:
        client.set_custom_attribute(_vm(client, name), LABEL, "true")


def _folder(client: VsphereClient, name: str, *vm_names: str) -> str:
    """A new VM folder holding ``vm_names``; its inventory path."""
    datacenter = client.content.rootFolder.childEntity[0]
    folder = datacenter.vmFolder.CreateFolder(name)
    if vm_names:
        client._wait(folder.MoveIntoFolder_Task([_vm(client, n) for n in vm_names]), "moving VMs")
    return f"{datacenter.name}/vm/{name}"


def _ensure(client: VsphereClient, keys: tuple[str, str], scope: str | None) -> list[str]:
    issued, _ = client.ensure_tokens(VC, "acme", keys[0], public_keys=[keys[1]], label_name=LABEL, now=NOW, ttl=TTL,
                                     renew_before=RENEW, scope=scope)
    return [name for name, _ in issued]


def _verify(client: VsphereClient, vm: Any, keys: tuple[str, str], scope: str | None) -> Any:
    facts = client.vm_facts(vm)
    return client.verify_vm_identity(client.read_token(vm), facts.bios_uuid, vcenter_id=VC, public_keys=[keys[1]],
                                     now=NOW, scope=scope)


def test_the_schedule_gives_tokens_only_to_vms_in_the_links_folder(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    _label(client, "DC0_H0_VM0", "DC0_H0_VM1", "DC0_C0_RP0_VM0")
    acme = _folder(client, "acme", "DC0_H0_VM0")
    assert _ensure(client, ed_keys, acme) == ["DC0_H0_VM0"]
    assert client.read_token(_vm(client, "DC0_H0_VM1")) is None
    assert client.read_token(_vm(client, "DC0_C0_RP0_VM0")) is None
    assert _verify(client, _vm(client, "DC0_H0_VM0"), ed_keys, acme).instance_name == "DC0_H0_VM0"
    # The manual trigger honours the scope too.
    issued = client.issue_tokens(VC, "acme", ed_keys[0], label_name=LABEL, now=NOW, ttl=TTL, scope=acme)
    assert [name for name, _ in issued] == ["DC0_H0_VM0"]


def test_a_vm_outside_the_folder_does_not_verify_even_with_a_genuine_token(
    client: VsphereClient, ed_keys: tuple[str, str]
) -> None:
    _label(client, "DC0_H0_VM0", "DC0_H0_VM1")
    acme = _folder(client, "acme", "DC0_H0_VM0")
    client.issue_tokens(VC, "acme", ed_keys[0], label_name=LABEL, now=NOW, ttl=TTL)  # unscoped: every labelled VM
    outside = _vm(client, "DC0_H0_VM1")
    with pytest.raises(IdentityRefused) as caught:
        _verify(client, outside, ed_keys, acme)
    assert caught.value.type == ErrorType.IDENTITY_OUT_OF_SCOPE
    assert _verify(client, outside, ed_keys, None).instance_name == "DC0_H0_VM1"  # the same token, no scope


def test_a_nested_folder_is_inside_its_parent(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    _label(client, "DC0_H0_VM0", "DC0_H0_VM1")
    acme = _folder(client, "acme")
    parent = client.content.searchIndex.FindByInventoryPath(inventoryPath=acme)
    child = parent.CreateFolder("prod")
    client._wait(child.MoveIntoFolder_Task([_vm(client, "DC0_H0_VM1")]), "moving a VM")
    assert _ensure(client, ed_keys, acme) == ["DC0_H0_VM1"]
    assert _verify(client, _vm(client, "DC0_H0_VM1"), ed_keys, acme).instance_name == "DC0_H0_VM1"


def test_tokens_go_only_to_vms_in_the_links_resource_pool(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    _label(client, "DC0_H0_VM0", "DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1")
    pool = "DC0/host/DC0_C0/Resources"
    assert _ensure(client, ed_keys, pool) == ["DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1"]
    assert client.read_token(_vm(client, "DC0_H0_VM0")) is None


def test_a_scope_that_names_no_folder_or_pool_is_a_configuration_error(
    client: VsphereClient, ed_keys: tuple[str, str]
) -> None:
    _label(client, "DC0_H0_VM0")
    for scope in ("DC0/vm/no-such-folder", "DC0/vm/DC0_H0_VM0"):  # nothing there; a VM, not a folder
        with pytest.raises(FleetpatchError) as caught:
            _ensure(client, ed_keys, scope)
        assert caught.value.type == ErrorType.CONFIGURATION_INVALID
    assert client.read_token(_vm(client, "DC0_H0_VM0")) is None


def test_reconcile_lists_only_the_vms_inside_the_links_folder(client: VsphereClient) -> None:
    acme = _folder(client, "acme", "DC0_H0_VM1", "DC0_C0_RP0_VM0")
    assert {m.name for m in client.list_vm_metadata(VC, acme)} == {"DC0_H0_VM1", "DC0_C0_RP0_VM0"}
    assert {"DC0_H0_VM0", "DC0_H0_VM1"} <= {m.name for m in client.list_vm_metadata(VC)}

"""The vSphere client and VM identity against a real vcsim (govmomi's simulator, VPX model)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clouds.vmware.biosuuid import format_uuid, parse_uuid, swap_first_fields
from clouds.vmware.errors import VcenterAuthError
from clouds.vmware.token import issue_token, verify_token
from clouds.vmware.vsphere import VcenterEndpoint, VsphereClient
from contracts.errors import ErrorType, IdentityRefused, InstanceRefused, TransientCloudError
from contracts.providers import Provider
from localclouds.vcsim.process import VcsimProcess

pytestmark = pytest.mark.vcsim

VC = "vc-local-1"
LABEL = "rackspace-addon-patching"
NOW = datetime.now(UTC).replace(microsecond=0)
TTL = timedelta(hours=1)


def _vm(client: VsphereClient, name: str) -> Any:
    vm = client.find_vm_by_name(name)
    assert vm is not None, name
    return vm


def _token_for(client: VsphereClient, vm: Any, private_pem: str, **kw: Any) -> str:
    args: dict[str, Any] = dict(vcenter_id=VC, instance_uuid=client.vm_facts(vm).instance_uuid,
                                customer="acme", now=NOW, ttl=TTL)
    args.update(kw)
    return issue_token(private_pem, **args)


def _verify(client: VsphereClient, token: object, bios: object, public_pem: str) -> Any:
    return client.verify_vm_identity(token, bios, vcenter_id=VC, public_keys=[public_pem], now=NOW)


# --- inventory, guestinfo, custom attributes ---------------------------------------------


def test_inventory_has_the_vpx_vms(client: VsphereClient) -> None:
    facts = client.all_vms()
    assert [f.name for f in facts] == ["DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1", "DC0_H0_VM0", "DC0_H0_VM1"]
    assert len({f.instance_uuid for f in facts}) == 4
    for f in facts:
        assert parse_uuid(f.instance_uuid) and parse_uuid(f.bios_uuid)
        assert f.instance_uuid != f.bios_uuid
        assert client.find_vm_by_instance_uuid(f.instance_uuid) == f.vm
    assert client.find_vm_by_instance_uuid("00000000-0000-4000-8000-000000000001") is None
    assert client.find_vm_by_name("no-such-vm") is None


def test_write_and_read_token(client: VsphereClient) -> None:
    vm = _vm(client, "DC0_H0_VM0")
    assert client.read_token(vm) is None
    client.write_token(vm, "first.token.value")
    assert client.read_token(vm) == "first.token.value"
    client.write_token(vm, "second.token.value")  # a newer token supersedes the old one
    assert client.read_token(vm) == "second.token.value"
    assert client.read_token(_vm(client, "DC0_H0_VM1")) is None  # other VMs untouched


def test_token_survives_a_new_session(endpoint: VcenterEndpoint, client: VsphereClient) -> None:
    client.write_token(_vm(client, "DC0_H0_VM1"), "persisted")
    with VsphereClient(endpoint) as other:
        assert other.read_token(_vm(other, "DC0_H0_VM1")) == "persisted"


def test_custom_attributes(client: VsphereClient) -> None:
    vm0, vm1 = _vm(client, "DC0_H0_VM0"), _vm(client, "DC0_H0_VM1")
    assert client.custom_attributes(vm0) == {}
    client.set_custom_attribute(vm0, LABEL, "true")  # creates the field definition
    client.set_custom_attribute(vm0, "owner", "team-a")
    client.set_custom_attribute(vm1, LABEL, "false")  # reuses it
    assert client.custom_attributes(vm0) == {LABEL: "true", "owner": "team-a"}
    assert client.custom_attributes(vm1) == {LABEL: "false"}
    client.set_custom_attribute(vm0, LABEL, "false")  # overwrite: the latest value counts
    assert client.custom_attributes(vm0)[LABEL] == "false"
    assert sorted(client.custom_field_names().values()) == sorted([LABEL, "owner"])


def test_vm_metadata(client: VsphereClient) -> None:
    vm = _vm(client, "DC0_C0_RP0_VM0")
    client.set_custom_attribute(vm, LABEL, "true")
    meta = client.vm_metadata(vm, VC)
    assert meta.provider == Provider.VMWARE
    assert meta.cloud_account == VC
    assert meta.name == "DC0_C0_RP0_VM0"
    assert meta.instance_id == client.vm_facts(vm).instance_uuid
    assert meta.labels == {LABEL: "true"}
    assert meta.state == "poweredOn"
    vm.PowerOffVM_Task()
    for _ in range(50):
        if client.vm_metadata(vm, VC).state == "poweredOff":
            break
    assert client.vm_metadata(vm, VC).state == "poweredOff"


# --- issuing ----------------------------------------------------------------------------


def test_issue_tokens_only_to_labelled_vms(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    labelled, unlabelled, other = (_vm(client, n) for n in ("DC0_H0_VM1", "DC0_C0_RP0_VM1", "DC0_H0_VM0"))
    client.set_custom_attribute(labelled, LABEL, "true")
    client.set_custom_attribute(unlabelled, LABEL, "false")
    client.set_custom_attribute(other, "something-else", "true")
    issued = client.issue_tokens(VC, "acme", ed_keys[0], now=NOW, ttl=TTL)
    facts = client.vm_facts(labelled)
    assert issued == [("DC0_H0_VM1", facts.instance_uuid)]
    token = client.read_token(labelled)
    verified = verify_token(token, public_keys=[ed_keys[1]], vcenter_id=VC, now=NOW)
    assert (verified.instance_uuid, verified.customer) == (facts.instance_uuid, "acme")
    for vm in (unlabelled, other, _vm(client, "DC0_C0_RP0_VM0")):
        assert client.read_token(vm) is None
    # Re-issuing replaces the token; a custom label name is honoured.
    client.set_custom_attribute(other, "patch-me", "true")
    again = client.issue_tokens(VC, "acme", ed_keys[0], label_name="patch-me", now=NOW, ttl=TTL)
    assert again == [("DC0_H0_VM0", client.vm_facts(other).instance_uuid)]
    assert client.read_token(other) is not None


def test_issue_tokens_without_any_label_writes_nothing(client: VsphereClient, es_keys: tuple[str, str]) -> None:
    assert client.issue_tokens(VC, "acme", es_keys[0], now=NOW, ttl=TTL) == []
    assert all(client.read_token(f.vm) is None for f in client.all_vms())


# --- verifying --------------------------------------------------------------------------


def test_verify_accepts_the_real_vm(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    vm = _vm(client, "DC0_H0_VM0")
    client.set_custom_attribute(vm, LABEL, "true")
    client.issue_tokens(VC, "acme", ed_keys[0], now=NOW, ttl=TTL)
    token = client.read_token(vm)
    facts = client.vm_facts(vm)
    identity = _verify(client, token, facts.bios_uuid, ed_keys[1])
    assert identity.provider == Provider.VMWARE
    assert identity.cloud_account == VC
    assert identity.instance_id == facts.instance_uuid
    assert identity.instance_name == "DC0_H0_VM0"
    assert identity.issued_at == NOW
    assert identity.instance_key == f"{VC}/{facts.instance_uuid}"
    assert identity.evidence["alg"] == "EdDSA"
    assert identity.evidence["key_fingerprint"].startswith("sha256:")
    assert identity.evidence["jti"] == verify_token(token, public_keys=[ed_keys[1]], vcenter_id=VC, now=NOW).jti
    # A guest on older virtual hardware reports the byte-swapped form, in capitals.
    legacy = format_uuid(swap_first_fields(parse_uuid(facts.bios_uuid) or b"")).upper()
    assert _verify(client, token, legacy, ed_keys[1]).instance_id == facts.instance_uuid


def test_verify_refuses_a_token_presented_by_another_vm(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    """VM1 presents VM0's token (copied out of VM0) with its own BIOS UUID."""
    vm0, vm1 = _vm(client, "DC0_H0_VM0"), _vm(client, "DC0_H0_VM1")
    token = _token_for(client, vm0, ed_keys[0])
    client.write_token(vm0, token)
    with pytest.raises(IdentityRefused) as caught:
        _verify(client, token, client.vm_facts(vm1).bios_uuid, ed_keys[1])
    assert caught.value.type == ErrorType.IDENTITY_INSTANCE_MISMATCH


def test_verify_refuses_a_token_copied_into_another_vm(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    """VM0's token written into VM1 (e.g. a clone copies extraConfig), VM0 re-issued since."""
    vm0, vm1 = _vm(client, "DC0_H0_VM0"), _vm(client, "DC0_H0_VM1")
    old = _token_for(client, vm0, ed_keys[0])
    client.write_token(vm0, old)
    client.write_token(vm1, old)
    client.write_token(vm0, _token_for(client, vm0, ed_keys[0]))
    for bios in (client.vm_facts(vm1).bios_uuid, client.vm_facts(vm0).bios_uuid):
        with pytest.raises(IdentityRefused) as caught:
            _verify(client, old, bios, ed_keys[1])
        assert caught.value.type == ErrorType.IDENTITY_TOKEN_MISMATCH


def test_verify_refuses_a_replaced_token(client: VsphereClient, es_keys: tuple[str, str]) -> None:
    vm = _vm(client, "DC0_C0_RP0_VM0")
    bios = client.vm_facts(vm).bios_uuid
    first = _token_for(client, vm, es_keys[0])
    client.write_token(vm, first)
    assert _verify(client, first, bios, es_keys[1]).instance_name == "DC0_C0_RP0_VM0"
    second = _token_for(client, vm, es_keys[0])
    client.write_token(vm, second)
    with pytest.raises(IdentityRefused) as caught:
        _verify(client, first, bios, es_keys[1])
    assert caught.value.type == ErrorType.IDENTITY_TOKEN_MISMATCH
    assert _verify(client, second, bios, es_keys[1]).evidence["alg"] == "ES256"


def test_verify_refuses_a_token_the_vm_never_held(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    vm = _vm(client, "DC0_H0_VM0")
    with pytest.raises(IdentityRefused) as caught:
        _verify(client, _token_for(client, vm, ed_keys[0]), client.vm_facts(vm).bios_uuid, ed_keys[1])
    assert caught.value.type == ErrorType.IDENTITY_TOKEN_MISMATCH


def test_verify_refuses_a_wrong_bios_uuid(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    vm = _vm(client, "DC0_H0_VM0")
    token = _token_for(client, vm, ed_keys[0])
    client.write_token(vm, token)
    for bios in ("421c5d1e-7a3b-9f04-c2d1-0a1b2c3d4e5f", client.vm_facts(vm).instance_uuid, "", "x"):
        with pytest.raises(IdentityRefused) as caught:
            _verify(client, token, bios, ed_keys[1])
        assert caught.value.type == ErrorType.IDENTITY_INSTANCE_MISMATCH
    with pytest.raises(IdentityRefused) as caught:
        _verify(client, token, None, ed_keys[1])
    assert caught.value.type == ErrorType.IDENTITY_MALFORMED


def test_verify_refuses_a_vm_that_does_not_exist(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    token = issue_token(ed_keys[0], vcenter_id=VC, instance_uuid="00000000-0000-4000-8000-00000000abcd",
                        customer="acme", now=NOW, ttl=TTL)
    with pytest.raises(InstanceRefused) as caught:
        _verify(client, token, "00000000-0000-4000-8000-00000000abcd", ed_keys[1])
    assert caught.value.type == ErrorType.INSTANCE_NOT_FOUND


def test_verify_checks_the_token_before_asking_vcenter(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    vm = _vm(client, "DC0_H0_VM0")
    token = _token_for(client, vm, ed_keys[0], vcenter_id="vc-other")
    client.write_token(vm, token)
    with pytest.raises(IdentityRefused) as caught:
        _verify(client, token, client.vm_facts(vm).bios_uuid, ed_keys[1])
    assert caught.value.type == ErrorType.IDENTITY_VCENTER_UNKNOWN


# --- errors -----------------------------------------------------------------------------


def test_wrong_password_is_a_non_retryable_auth_error(vcsim: VcsimProcess) -> None:
    with VsphereClient(VcenterEndpoint(url=vcsim.url, username="fleetpatch", password="wrong")) as bad:
        with pytest.raises(VcenterAuthError) as caught:
            bad.all_vms()
    assert caught.value.retryable is False
    assert caught.value.type == ErrorType.CONFIGURATION_INVALID
    assert "wrong" not in str(caught.value)


def test_stopped_vcenter_is_transient(vcsim: VcsimProcess, endpoint: VcenterEndpoint) -> None:
    vcsim.stop()
    with VsphereClient(endpoint) as gone:
        with pytest.raises(TransientCloudError) as caught:
            gone.all_vms()
    assert caught.value.retryable is True


def test_vm_removed_under_us_is_instance_not_found(client: VsphereClient) -> None:
    vm = _vm(client, "DC0_H0_VM1")
    facts = client.vm_facts(vm)
    vm.PowerOffVM_Task()
    for _ in range(50):
        if client.vm_facts(vm).power_state == "poweredOff":
            break
    client._wait(vm.Destroy_Task(), "destroying the VM")
    assert client.find_vm_by_instance_uuid(facts.instance_uuid) is None
    with pytest.raises(InstanceRefused) as caught:
        client.vm_facts(vm)
    assert caught.value.type == ErrorType.INSTANCE_NOT_FOUND


def test_list_vm_metadata_follows_relabels_and_destroys(client: VsphereClient) -> None:
    """What reconcile reads: one container view, custom attributes as labels, destroyed VMs gone."""
    keep, gone = _vm(client, "DC0_H0_VM0"), _vm(client, "DC0_H0_VM1")
    client.set_custom_attribute(keep, LABEL, "true")
    client.set_custom_attribute(keep, "rackspace-addon-patching-patchgroup", "late")
    gone_uuid = client.vm_facts(gone).instance_uuid
    client._wait(gone.PowerOffVM_Task(), "powering off")
    client._wait(gone.Destroy_Task(), "destroying the VM")
    listed = {m.name: m for m in client.list_vm_metadata(VC)}
    assert sorted(listed) == ["DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1", "DC0_H0_VM0"]
    assert gone_uuid not in {m.instance_id for m in listed.values()}
    kept = listed["DC0_H0_VM0"]
    assert kept.provider == Provider.VMWARE and kept.cloud_account == VC
    assert kept.labels == {LABEL: "true", "rackspace-addon-patching-patchgroup": "late"}
    assert listed["DC0_C0_RP0_VM0"].labels == {}


def test_ensure_tokens_issues_missing_keeps_valid_rotates_expiring_and_replaces_foreign(
    client: VsphereClient, ed_keys: tuple[str, str], es_keys: tuple[str, str]
) -> None:
    """What the token schedule does, with no operator."""
    private, public = ed_keys
    vm0, vm1, off = _vm(client, "DC0_H0_VM0"), _vm(client, "DC0_H0_VM1"), _vm(client, "DC0_C0_RP0_VM0")
    client.set_custom_attribute(vm0, LABEL, "true")
    client.set_custom_attribute(vm1, LABEL, "true")
    client.set_custom_attribute(off, LABEL, "false")
    ensure = lambda now, **kw: client.ensure_tokens(  # noqa: E731
        VC, "acme", private, public_keys=[public], now=now, ttl=TTL, renew_before=timedelta(minutes=20), **kw)
    issued, kept = ensure(NOW)
    assert sorted(name for name, _ in issued) == ["DC0_H0_VM0", "DC0_H0_VM1"] and kept == 0
    assert client.read_token(off) is None
    first = client.read_token(vm0)
    assert ensure(NOW + timedelta(minutes=10)) == ([], 2)  # valid beyond the margin: kept
    assert client.read_token(vm0) == first
    issued, kept = ensure(NOW + timedelta(minutes=45))  # within 20 minutes of expiry: rotated
    assert len(issued) == 2 and kept == 0 and client.read_token(vm0) != first
    client.write_token(vm1, _token_for(client, vm1, es_keys[0]))  # signed by a key the link does not hold
    issued, kept = ensure(NOW + timedelta(minutes=50))
    assert [name for name, _ in issued] == ["DC0_H0_VM1"] and kept == 1
    other_customer = client.ensure_tokens(VC, "globex", private, public_keys=[public], now=NOW + timedelta(minutes=50),
                                          ttl=TTL, renew_before=timedelta(minutes=20))
    assert len(other_customer[0]) == 2  # a token for another customer is no token for this link


def test_replace_token_makes_the_used_token_enroll_nothing(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    vm = _vm(client, "DC0_H0_VM0")
    client.set_custom_attribute(vm, LABEL, "true")
    client.issue_tokens(VC, "acme", ed_keys[0], now=NOW, ttl=TTL)
    used, facts = client.read_token(vm), client.vm_facts(vm)
    assert _verify(client, used, facts.bios_uuid, ed_keys[1]).instance_id == facts.instance_uuid
    client.replace_token(VC, facts.instance_uuid, "acme", ed_keys[0], now=NOW, ttl=TTL)
    fresh = client.read_token(vm)
    assert fresh != used
    with pytest.raises(IdentityRefused):
        _verify(client, used, facts.bios_uuid, ed_keys[1])
    assert _verify(client, fresh, facts.bios_uuid, ed_keys[1]).instance_id == facts.instance_uuid

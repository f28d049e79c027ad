"""One vCenter shared by several customers: each customer has a link of its own (``vc01:acme``,
``vc01:globex``), scoped to its folder. Link ids and scope overlap (pure), the token's ``link``
claim, and on a real vcsim: each link's tokens go to its folder only, verify as that link, and a
token of one link never verifies under the other, even on the same vCenter and VM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clouds.vmware.jws import b64url, compact_json
from clouds.vmware.token import issue_token, peek_vcenter_token, verify_token
from clouds.vmware.vsphere import VsphereClient
from contracts import vcenter_links
from contracts.errors import ErrorType, IdentityRefused

VC = "vc-local-1"
ACME, GLOBEX = f"{VC}:acme", f"{VC}:globex"
LABEL = "rackspace-addon-patching"
NOW = datetime.now(UTC).replace(microsecond=0)
TTL = timedelta(hours=1)
UUID = "5029b3a3-5b70-a1e6-0ab7-8f7d1e2f3a4b"


# --- link ids and scopes (pure) ------------------------------------------------------------


def test_a_link_id_names_its_vcenter_and_its_parameter_path() -> None:
    assert vcenter_links.vcenter_of("vc01") == "vc01" and vcenter_links.name_of("vc01") is None
    assert vcenter_links.vcenter_of("vc01:acme") == "vc01" and vcenter_links.name_of("vc01:acme") == "acme"
    assert vcenter_links.parameter_path("vc01:acme") == "vc01/acme"
    assert vcenter_links.link_id("vc01", "acme") == "vc01:acme" and vcenter_links.link_id("vc01") == "vc01"
    for bad in ("vc01:", ":acme", "vc01:acme:x", "vc01/acme", "vc01:a b", "", "vc01:../x"):
        assert not vcenter_links.is_link_id(bad), bad
    with pytest.raises(ValueError):
        vcenter_links.link_id("vc01", "a/b")


@pytest.mark.parametrize(
    ("a", "b", "overlaps"),
    [
        ("DC0/vm/acme", "DC0/vm/globex", False),
        ("DC0/vm/acme", "DC0/vm/acme", True),
        ("DC0/vm/acme", "DC0/vm/acme/prod", True),  # a folder inside the other
        ("DC0/vm/acme/", "/DC0/vm/acme", True),  # the same folder, written differently
        ("DC0/vm/acme", "DC0/vm/acme-prod", False),  # a longer name is another folder
        ("DC0/vm/acme", None, True),  # the whole vCenter holds every VM
        ("DC0/vm/acme", "DC0/host/C0/Resources/globex", True),  # a folder and a pool may share a VM
        ("DC0/host/C0/Resources/acme", "DC0/host/C0/Resources/globex", False),
        ("DC0/host/C0/Resources", "DC0/host/C0/Resources/globex", True),
        ("DC0/vm/acme", "DC1/vm/acme", False),
    ],
)
def test_scopes_overlap_when_they_may_hold_one_vm(a: str | None, b: str | None, overlaps: bool) -> None:
    assert vcenter_links.overlap(a, b) is overlaps
    assert vcenter_links.overlap(b, a) is overlaps


def test_a_conflict_is_another_link_of_the_same_vcenter_only() -> None:
    others = [("vc01", "DC0/vm/acme"), ("vc01:globex", "DC0/vm/globex"), ("vc02", None)]
    assert vcenter_links.conflicting("vc01:initech", "DC0/vm/initech", others) is None
    assert vcenter_links.conflicting("vc01:initech", "DC0/vm/globex/x", others) == "vc01:globex (DC0/vm/globex)"
    assert vcenter_links.conflicting("vc01:globex", "DC0/vm/globex", others) is None  # a change to itself
    assert vcenter_links.conflicting("vc01:all", None, others) == "vc01 (DC0/vm/acme)"
    assert vcenter_links.conflicting("vc02:x", "DC0/vm/x", others) == "vc02 (the whole vCenter)"


# --- the token's link claim (pure) ---------------------------------------------------------


def test_a_token_names_its_link_and_verifies_only_for_it(ed_keys: tuple[str, str]) -> None:
    private, public = ed_keys
    token = issue_token(private, vcenter_id=VC, instance_uuid=UUID, customer="acme", now=NOW, ttl=TTL, link=ACME)
    assert peek_vcenter_token(token) == (ACME, UUID)
    verified = verify_token(token, public_keys=[public], vcenter_id=VC, now=NOW, link=ACME)
    assert (verified.link, verified.customer) == (ACME, "acme")
    for other in (GLOBEX, VC, None):  # another link of the same vCenter, and its whole-vCenter link
        with pytest.raises(IdentityRefused) as caught:
            verify_token(token, public_keys=[public], vcenter_id=VC, now=NOW, link=other)
        assert caught.value.type == ErrorType.IDENTITY_LINK_MISMATCH
    with pytest.raises(IdentityRefused) as caught:  # a link of another vCenter
        verify_token(token, public_keys=[public], vcenter_id=VC, now=NOW, link="vc-other:acme")
    assert caught.value.type == ErrorType.IDENTITY_LINK_MISMATCH


def test_a_token_without_a_link_claim_is_its_vcenters_whole_link(ed_keys: tuple[str, str]) -> None:
    """Tokens issued before a vCenter could be shared keep working for the link named by the vCenter."""
    private, public = ed_keys
    token = issue_token(private, vcenter_id=VC, instance_uuid=UUID, customer="acme", now=NOW, ttl=TTL)
    assert peek_vcenter_token(token) == (VC, UUID)
    assert verify_token(token, public_keys=[public], vcenter_id=VC, now=NOW).link == VC
    legacy = _resigned(token, private, lambda claims: claims.pop("link"))
    assert peek_vcenter_token(legacy) == (VC, UUID)
    assert verify_token(legacy, public_keys=[public], vcenter_id=VC, now=NOW).link == VC
    with pytest.raises(IdentityRefused) as caught:
        verify_token(legacy, public_keys=[public], vcenter_id=VC, now=NOW, link=ACME)
    assert caught.value.type == ErrorType.IDENTITY_LINK_MISMATCH


def test_a_link_claim_changed_after_signing_does_not_verify(ed_keys: tuple[str, str]) -> None:
    private, public = ed_keys
    token = issue_token(private, vcenter_id=VC, instance_uuid=UUID, customer="globex", now=NOW, ttl=TTL, link=GLOBEX)
    header, payload, signature = token.split(".")
    claims = _claims(token) | {"link": ACME, "customer": "acme"}
    forged = f"{header}.{b64url(compact_json(claims))}.{signature}"
    with pytest.raises(IdentityRefused) as caught:
        verify_token(forged, public_keys=[public], vcenter_id=VC, now=NOW, link=ACME)
    assert caught.value.type == ErrorType.IDENTITY_SIGNATURE_INVALID


@pytest.mark.parametrize("link", [123, "", "vc-local-1:a/b", "x" * 300, None])
def test_a_malformed_link_claim_is_refused(ed_keys: tuple[str, str], link: Any) -> None:
    private, public = ed_keys
    token = _resigned(issue_token(private, vcenter_id=VC, instance_uuid=UUID, customer="acme", now=NOW, ttl=TTL),
                      private, lambda claims: claims.update(link=link))
    for call in (lambda: peek_vcenter_token(token), lambda: verify_token(token, public_keys=[public], vcenter_id=VC, now=NOW)):
        with pytest.raises(IdentityRefused) as caught:
            call()
        assert caught.value.type == ErrorType.IDENTITY_MALFORMED


def test_issuing_under_a_link_of_another_vcenter_is_a_programming_error(ed_keys: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        issue_token(ed_keys[0], vcenter_id=VC, instance_uuid=UUID, customer="acme", now=NOW, ttl=TTL, link="vc-2:acme")


def _claims(token: str) -> dict[str, Any]:
    import base64
    import json

    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _resigned(token: str, private_pem: str, change: Any) -> str:
    """The token with its claims changed and signed again with the same key (a genuine signature)."""
    from cryptography.hazmat.primitives import serialization

    claims = _claims(token)
    change(claims)
    header = token.split(".")[0]
    signing_input = f"{header}.{b64url(compact_json(claims))}".encode()
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return signing_input.decode() + "." + b64url(key.sign(signing_input))  # type: ignore[union-attr,call-arg]


# --- on a real vcsim -----------------------------------------------------------------------


def _vm(client: VsphereClient, name: str) -> Any:
    vm = client.find_vm_by_name(name)
    assert vm is not None, name
    return vm


def _folder(client: VsphereClient, name: str, *vm_names: str) -> str:
    datacenter = client.content.rootFolder.childEntity[0]
    folder = datacenter.vmFolder.CreateFolder(name)
    client._wait(folder.MoveIntoFolder_Task([_vm(client, n) for n in vm_names]), "moving VMs")
    return f"{datacenter.name}/vm/{name}"


def _two_customers(client: VsphereClient) -> tuple[str, str]:
    for name in ("DC0_H0_VM0", "DC0_H0_VM1", "DC0_C0_RP0_VM0"):
        client.set_custom_attribute(_vm(client, name), LABEL, "true")
    return _folder(client, "acme", "DC0_H0_VM0"), _folder(client, "globex", "DC0_H0_VM1")


def _ensure(client: VsphereClient, keys: tuple[str, str], link: str, customer: str, scope: str) -> list[str]:
    issued, _ = client.ensure_tokens(link, customer, keys[0], public_keys=[keys[1]], label_name=LABEL, now=NOW, ttl=TTL,
                                     renew_before=timedelta(minutes=20), scope=scope)
    return [name for name, _ in issued]


def _verify(client: VsphereClient, vm: Any, keys: tuple[str, str], link: str, scope: str) -> Any:
    return client.verify_vm_identity(client.read_token(vm), client.vm_facts(vm).bios_uuid, vcenter_id=VC,
                                     public_keys=[keys[1]], now=NOW, scope=scope, link=link)


@pytest.mark.vcsim
def test_each_link_of_a_shared_vcenter_tokens_and_verifies_its_own_folder(
    client: VsphereClient, ed_keys: tuple[str, str]
) -> None:
    acme, globex = _two_customers(client)
    assert _ensure(client, ed_keys, ACME, "acme", acme) == ["DC0_H0_VM0"]
    assert _ensure(client, ed_keys, GLOBEX, "globex", globex) == ["DC0_H0_VM1"]
    assert client.read_token(_vm(client, "DC0_C0_RP0_VM0")) is None  # in neither folder
    # Each link's next run keeps its own tokens: the other link's run did not disturb them.
    assert _ensure(client, ed_keys, ACME, "acme", acme) == []
    assert peek_vcenter_token(client.read_token(_vm(client, "DC0_H0_VM0")))[0] == ACME
    identity = _verify(client, _vm(client, "DC0_H0_VM0"), ed_keys, ACME, acme)
    assert (identity.cloud_account, identity.evidence["customer"]) == (ACME, "acme")
    assert identity.instance_key == f"{ACME}/{client.vm_facts(_vm(client, 'DC0_H0_VM0')).instance_uuid}"
    assert _verify(client, _vm(client, "DC0_H0_VM1"), ed_keys, GLOBEX, globex).cloud_account == GLOBEX
    # The same VM's metadata and the link's listing carry the link id as the cloud account.
    assert {m.cloud_account for m in client.list_vm_metadata(GLOBEX, globex)} == {GLOBEX}


@pytest.mark.vcsim
def test_a_token_of_one_link_never_verifies_under_the_other(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    """Globex's link signs a token for a VM in acme's folder, and someone writes it into the VM:
    under globex's link the VM is out of scope; under acme's link the token names another link."""
    acme, globex = _two_customers(client)
    vm = _vm(client, "DC0_H0_VM0")
    planted = issue_token(ed_keys[0], vcenter_id=VC, instance_uuid=client.vm_facts(vm).instance_uuid, customer="globex",
                          now=NOW, ttl=TTL, link=GLOBEX)
    client.write_token(vm, planted)
    with pytest.raises(IdentityRefused) as caught:
        _verify(client, vm, ed_keys, GLOBEX, globex)
    assert caught.value.type == ErrorType.IDENTITY_OUT_OF_SCOPE
    with pytest.raises(IdentityRefused) as caught:
        _verify(client, vm, ed_keys, ACME, acme)
    assert caught.value.type == ErrorType.IDENTITY_LINK_MISMATCH
    # Acme's next token run replaces the foreign token: it does not name acme's link.
    assert _ensure(client, ed_keys, ACME, "acme", acme) == ["DC0_H0_VM0"]
    assert _verify(client, vm, ed_keys, ACME, acme).cloud_account == ACME


@pytest.mark.vcsim
def test_replacing_a_used_token_keeps_its_link(client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    acme, _ = _two_customers(client)
    vm = _vm(client, "DC0_H0_VM0")
    _ensure(client, ed_keys, ACME, "acme", acme)
    used = client.read_token(vm)
    client.replace_token(ACME, client.vm_facts(vm).instance_uuid, "acme", ed_keys[0], now=NOW, ttl=TTL)
    fresh = client.read_token(vm)
    assert fresh != used and peek_vcenter_token(fresh)[0] == ACME
    assert _verify(client, vm, ed_keys, ACME, acme).cloud_account == ACME


@pytest.mark.vcsim
def test_issue_tokens_by_hand_for_one_link_of_a_shared_vcenter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, vcsim: Any, client: VsphereClient
) -> None:
    import json

    from typer.testing import CliRunner

    from clients.cli.vcenter_cmd import app
    from localclouds.vcsim import PASSWORD, USERNAME
    from localclouds.vcsim.keys import ensure_keys

    signing, public = ensure_keys(tmp_path)
    monkeypatch.setenv("FLEETPATCH_VMWARE__VCENTERS", json.dumps(
        {VC: {"url": vcsim.url, "username": USERNAME, "password": PASSWORD, "signing_key_file": str(signing)}}))
    acme, _ = _two_customers(client)
    result = CliRunner().invoke(app, ["issue-tokens", "--vcenter", ACME, "--customer", "acme", "--folder", acme])
    assert result.exit_code == 0, result.output
    assert "DC0_H0_VM0" in result.output and "DC0_H0_VM1" not in result.output
    assert client.read_token(_vm(client, "DC0_H0_VM1")) is None  # globex's VM is not acme's link's to touch
    verified = verify_token(client.read_token(_vm(client, "DC0_H0_VM0")), public_keys=[public.read_text()],
                            vcenter_id=VC, now=datetime.now(UTC), link=ACME)
    assert (verified.link, verified.customer) == (ACME, "acme")

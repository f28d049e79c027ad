"""Links of one vCenter shared by several customers, in the local AWS's Parameter Store: a further
link ``vc01:acme`` is kept under ``.../vmware/vc01/acme`` beside the vCenter's own link, and a link
whose folder or pool overlaps another link of the same vCenter is refused."""

from __future__ import annotations

import uuid

import pytest

from clouds.aws.links import LinkStore
from clouds.aws.sessions import AwsSessions
from contracts.enrollment import TenantLink
from contracts.errors import ErrorType, FleetpatchError
from contracts.providers import Provider


def _link(account: str, customer: str, scope: str | None) -> TenantLink:
    return TenantLink(provider=Provider.VMWARE, cloud_account=account, customer=customer, vcenter_scope=scope,
                      vcenter_public_keys=["-----BEGIN PUBLIC KEY-----\nkey\n-----END PUBLIC KEY-----\n"])


def test_links_of_one_vcenter_live_side_by_side(sessions: AwsSessions) -> None:
    prefix = f"/fleetpatch/test-{uuid.uuid4().hex[:6]}/links"
    store = LinkStore(sessions, prefix)
    whole, acme, globex = _link("vc01", "umbrella", "DC0/vm/umbrella"), _link("vc01:acme", "acme", "DC0/vm/acme"), \
        _link("vc01:globex", "globex", "DC0/vm/globex")
    for link in (whole, acme, globex):
        store.put(link)
    assert store.get(Provider.VMWARE, "vc01:acme") == acme
    assert store.get(Provider.VMWARE, "vc01") == whole
    assert store.get(Provider.VMWARE, "vc01:initech") is None
    names = sessions.management("ssm").get_parameters_by_path(Path=f"{prefix}/vmware", Recursive=True)["Parameters"]
    assert sorted(p["Name"] for p in names) == [f"{prefix}/vmware/vc01", f"{prefix}/vmware/vc01/acme",
                                                  f"{prefix}/vmware/vc01/globex"]
    assert {(l.cloud_account, l.customer) for l in store.list()} == {("vc01", "umbrella"), ("vc01:acme", "acme"),
                                                                     ("vc01:globex", "globex")}
    store.put(_link("vc01:acme", "acme", "DC0/vm/acme-prod"))  # a change to a link is no overlap with itself
    assert store.delete(Provider.VMWARE, "vc01:acme") is True
    assert store.get(Provider.VMWARE, "vc01") == whole  # the vCenter's own link stays
    assert {l.cloud_account for l in store.list()} == {"vc01", "vc01:globex"}


@pytest.mark.parametrize(
    ("account", "scope"),
    [
        ("vc01:initech", "DC0/vm/acme/initech"),  # inside acme's folder
        ("vc01:initech", "DC0/host/C0/Resources/initech"),  # a pool may hold a VM of acme's folder
        ("vc01", None),  # the whole vCenter
        ("vc01:globex", "DC0/vm"),  # a change of globex's link that would take acme's VMs
    ],
)
def test_an_overlapping_link_is_refused_and_not_stored(sessions: AwsSessions, account: str, scope: str | None) -> None:
    store = LinkStore(sessions, f"/fleetpatch/test-{uuid.uuid4().hex[:6]}/links")
    store.put(_link("vc01:acme", "acme", "DC0/vm/acme"))
    store.put(_link("vc01:globex", "globex", "DC0/vm/globex"))
    store.put(_link("vc02", "initech", None))  # another vCenter: no conflict with it
    before = store.list()
    with pytest.raises(FleetpatchError) as caught:
        store.put(_link(account, "initech", scope))
    assert caught.value.type == ErrorType.LINK_SCOPES_OVERLAP
    assert "vc01:" in caught.value.reason
    assert store.list() == before


def test_a_further_link_without_a_scope_is_refused(sessions: AwsSessions) -> None:
    store = LinkStore(sessions, f"/fleetpatch/test-{uuid.uuid4().hex[:6]}/links")
    with pytest.raises(FleetpatchError) as caught:
        store.put(_link("vc01:acme", "acme", None))
    assert caught.value.type == ErrorType.CONFIGURATION_INVALID
    assert store.list() == []


class _Racing(LinkStore):
    """A store where another operator's link lands between this put's check and its write."""

    def __init__(self, sessions: AwsSessions, prefix: str, racer: TenantLink) -> None:
        super().__init__(sessions, prefix)
        self._racer: TenantLink | None = racer

    def list(self) -> list[TenantLink]:
        seen = super().list()
        if self._racer is not None:
            racer, self._racer = self._racer, None
            LinkStore(self._sessions, self._prefix).put(racer)
        return seen


@pytest.mark.parametrize("previous_scope", [None, "DC0/vm/initech"])
def test_a_link_made_to_overlap_by_a_concurrent_change_is_taken_back(
    sessions: AwsSessions, previous_scope: str | None
) -> None:
    prefix = f"/fleetpatch/test-{uuid.uuid4().hex[:6]}/links"
    if previous_scope:
        LinkStore(sessions, prefix).put(_link("vc01:initech", "initech", previous_scope))
    racer = _link("vc01:acme", "acme", "DC0/vm/shared")
    store = _Racing(sessions, prefix, racer)
    with pytest.raises(FleetpatchError) as caught:
        store.put(_link("vc01:initech", "initech", "DC0/vm/shared/initech"))
    assert caught.value.type == ErrorType.LINK_SCOPES_OVERLAP
    kept = {l.cloud_account: l.vcenter_scope for l in LinkStore(sessions, prefix).list()}
    expected = {"vc01:acme": "DC0/vm/shared"} | ({"vc01:initech": previous_scope} if previous_scope else {})
    assert kept == expected

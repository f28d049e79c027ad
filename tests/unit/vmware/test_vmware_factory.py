"""The vmware worker's entry points against a real vcsim, configured only through settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from clouds.vmware.factory import client_for, read_vm_metadata, verify_vmware_identity
from clouds.vmware.vsphere import VsphereClient
from config.settings import VmwareSettings
from contracts.errors import ErrorType, IdentityRefused
from localclouds.vcsim import PASSWORD, USERNAME
from localclouds.vcsim.process import VcsimProcess

pytestmark = pytest.mark.vcsim
VC = "vc-factory"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def settings(vcsim: VcsimProcess) -> VmwareSettings:
    return VmwareSettings.model_validate(
        {"vcenters": {VC: {"url": vcsim.url, "username": USERNAME, "password": PASSWORD}}}
    )


def test_verify_then_read_metadata(settings: VmwareSettings, client: VsphereClient,
                                   ed_keys: tuple[str, str]) -> None:
    vm = client.find_vm_by_name("DC0_H0_VM1")
    client.set_custom_attribute(vm, "rackspace-addon-patching", "true")
    client.set_custom_attribute(vm, "rackspace-addon-patching-patchgroup", "early")
    client.issue_tokens(VC, "acme", ed_keys[0], now=NOW, ttl=timedelta(hours=1))
    sent = {"token": client.read_token(vm), "bios_uuid": client.vm_facts(vm).bios_uuid.upper()}

    identity = verify_vmware_identity(sent, vcenter_id=VC, public_keys=[ed_keys[1]], settings=settings, now=NOW)
    meta = read_vm_metadata(identity, settings)

    assert identity.instance_name == meta.name == "DC0_H0_VM1"
    assert meta.instance_id == identity.instance_id
    assert meta.labels == {"rackspace-addon-patching": "true", "rackspace-addon-patching-patchgroup": "early"}
    json.dumps(identity.evidence)  # plain strings only: it travels in workflow history


def test_refusals(settings: VmwareSettings, client: VsphereClient, ed_keys: tuple[str, str]) -> None:
    with pytest.raises(IdentityRefused) as caught:
        client_for(settings, "vc-unknown")
    assert caught.value.type == ErrorType.IDENTITY_VCENTER_UNKNOWN
    for sent, error in (
        ({"token": "x"}, ErrorType.IDENTITY_CLAIMS_MISSING),
        ("not a dict", ErrorType.IDENTITY_MALFORMED),
        ({"token": "x.y.z", "bios_uuid": "b"}, ErrorType.IDENTITY_MALFORMED),
    ):
        with pytest.raises(IdentityRefused) as caught:
            verify_vmware_identity(sent, vcenter_id=VC, public_keys=[ed_keys[1]],  # type: ignore[arg-type]
                                   settings=settings, now=NOW)
        assert caught.value.type == error

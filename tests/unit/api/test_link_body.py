"""Link bodies: a vCenter's folder/resource-pool scope and remote access (checked at the door)."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from clients.api.link_input import LinkBody as LinkBodyType
from clients.api.routes.links import _link_json
from clouds.aws.links import link_from_json, link_to_json
from clouds.vmware.token import generate_signing_key

PUBLIC = generate_signing_key("EdDSA")[1]
_ADAPTER = TypeAdapter(LinkBodyType)


def LinkBody(**body: object):  # noqa: N802 - reads like the model it validates
    return _ADAPTER.validate_python(body)


def _vmware(**kw: object) -> dict:
    return {"provider": "vmware", "cloud_account": "vc-dc1", "customer": "acme", "vcenter_public_keys": [PUBLIC], **kw}


def test_a_vcenter_link_may_be_scoped_and_allow_remote_access() -> None:
    link = LinkBody(**_vmware(vcenter_scope="DC1/vm/customers/acme", remote_access=True)).to_link()
    assert (link.vcenter_scope, link.remote_access) == ("DC1/vm/customers/acme", True)
    assert link_from_json(link_to_json(link)) == link  # the link store keeps both
    shown = _link_json(link)
    assert (shown["vcenter_scope"], shown["remote_access"]) == ("DC1/vm/customers/acme", True)
    plain = LinkBody(**_vmware()).to_link()
    assert (plain.vcenter_scope, plain.remote_access) == (None, False)


@pytest.mark.parametrize("body, field", [
    (_vmware(vcenter_scope="../../etc"), "vcenter_scope"),
    (_vmware(vcenter_scope="x" * 300), "vcenter_scope"),
    ({"provider": "gcp", "cloud_account": "acme-prod-1", "customer": "acme", "vcenter_scope": "DC1/vm/acme"}, "vcenter_scope"),
])
def test_bad_scopes_are_refused_naming_the_field(body: dict, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        LinkBody(**body)
    assert field in str(caught.value)


def test_a_gcp_link_may_allow_remote_access() -> None:
    assert LinkBody(provider="gcp", cloud_account="acme-prod-1", customer="acme", remote_access=True).to_link().remote_access

"""Link bodies: remote access (Session Manager) is a field of every provider's link."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from clients.api.link_input import LinkBody
from clients.api.routes.links import _link_json
from clouds.aws.links import link_from_json, link_to_json

_ADAPTER = TypeAdapter(LinkBody)


def test_a_link_may_allow_remote_access() -> None:
    link = _ADAPTER.validate_python({"provider": "gcp", "cloud_account": "acme-prod-1", "customer": "acme",
                                     "remote_access": True}).to_link()
    assert link.remote_access is True
    assert link_from_json(link_to_json(link)) == link  # the link store keeps it
    assert _link_json(link)["remote_access"] is True
    plain = _ADAPTER.validate_python({"provider": "gcp", "cloud_account": "acme-prod-1", "customer": "acme"}).to_link()
    assert plain.remote_access is False


def test_remote_access_is_a_boolean() -> None:
    with pytest.raises(ValidationError) as caught:
        _ADAPTER.validate_python({"provider": "gcp", "cloud_account": "acme-prod-1", "customer": "acme",
                                  "remote_access": "maybe"})
    assert "remote_access" in str(caught.value)

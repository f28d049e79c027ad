"""A vCenter link's folder or resource pool (``links add --folder``): the API validates it (400
naming the field), states it in OpenAPI, the link store keeps it, and the CLI sends it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import Result

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from clouds.aws.links import link_from_json, link_to_json
from clouds.vmware.token import generate_signing_key
from config.settings import Settings
from contracts.enrollment import TenantLink
from contracts.providers import Provider
from tests.support.offline_api import NoTemporal, offline_api

TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PUBLIC = generate_signing_key("EdDSA")[1]


def _api(temporal: NoTemporal) -> httpx.AsyncClient:
    return offline_api(temporal, TOKEN)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "vmware", "vcenter_scope": "DC0//acme"}, "vcenter_scope"),
        ({"provider": "vmware", "vcenter_scope": "/DC0/vm/acme"}, "vcenter_scope"),
        ({"provider": "vmware", "vcenter_scope": "DC0/vm/acme;rm"}, "vcenter_scope"),
        ({"provider": "vmware", "vcenter_scope": "x" * 256}, "vcenter_scope"),
        ({"provider": "gcp", "cloud_account": "acme-prod", "vcenter_scope": "DC0/vm/acme"}, "vcenter_scope"),
    ],
)
async def test_a_bad_folder_is_400_naming_it_before_any_workflow(body: dict[str, Any], field: str) -> None:
    full = {"cloud_account": "vc-dc1", "customer": "acme", "vcenter_public_keys": [PUBLIC], **body}
    if full["provider"] != "vmware":
        full.pop("vcenter_public_keys")
    temporal = NoTemporal()
    async with _api(temporal) as api:
        response = await api.post("/v1/admin/links", json=full, headers=AUTH)
    assert response.status_code == 400, response.text
    assert response.json()["field"].split(".")[-1] == field
    assert temporal.calls == 0


async def test_a_good_folder_passes_validation() -> None:
    """It reaches Temporal (here: unreachable, 503), so the body was accepted."""
    temporal = NoTemporal()
    body = {"provider": "vmware", "cloud_account": "vc-dc1", "customer": "acme", "vcenter_public_keys": [PUBLIC],
            "vcenter_scope": "DC0/host/DC0_C0/Resources/acme prod"}
    async with _api(temporal) as api:
        response = await api.post("/v1/admin/links", json=body, headers=AUTH)
    assert response.status_code == 503, response.text
    assert temporal.calls >= 1


def test_openapi_states_the_folder_on_vmware_links_only() -> None:
    schemas = create_app(Settings(), TemporalGateway(NoTemporal())).openapi()["components"]["schemas"]
    scope = schemas["VmwareLink"]["properties"]["vcenter_scope"]
    assert any(option.get("pattern") and option.get("maxLength") == 255 for option in scope["anyOf"])
    assert "vcenter_scope" not in schemas["GcpLink"]["properties"]


def test_the_link_store_keeps_the_folder() -> None:
    link = TenantLink(provider=Provider.VMWARE, cloud_account="vc-dc1", customer="acme", vcenter_public_keys=[PUBLIC],
                      vcenter_scope="DC0/vm/acme")
    assert link_from_json(link_to_json(link)).vcenter_scope == "DC0/vm/acme"
    unscoped = TenantLink(provider=Provider.VMWARE, cloud_account="vc-dc1", customer="acme")
    assert link_from_json(link_to_json(unscoped)).vcenter_scope is None


def test_links_add_folder_sends_the_scope(links_add: Callable[..., tuple[Result, list[dict[str, Any]]]]) -> None:
    result, sent = links_add("--vcenter", "vc-dc1", "--folder", "DC0/vm/acme")
    assert result.exit_code == 0, result.output
    assert sent[0]["vcenter_scope"] == "DC0/vm/acme" and sent[0]["provider"] == "vmware"

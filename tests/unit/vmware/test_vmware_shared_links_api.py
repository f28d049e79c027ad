"""Links of a vCenter shared by several customers at the edges: the API's body and path rules (a
400 naming the field before any workflow), OpenAPI, the API's proof routing by the token's link,
the key cache by link id, and the CLI (``links add --name``, ``vcenter issue-tokens`` of a link)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from collections.abc import Callable
from typing import Any

import httpx
import jsonschema
import pytest
from rich.console import Console
from typer.testing import CliRunner
from click.testing import Result

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from clients.api.proof import IdentityProof
from clients.api.vcenter_keys import VcenterKeyCache
from clients.cli import common, links_cmd, vcenter_cmd
from clouds.vmware.token import generate_signing_key, issue_token
from config.settings import Settings
from contracts.enrollment import LinkCommandResult, TenantLink
from contracts.errors import ErrorType, IdentityRefused
from contracts.providers import Provider
from tests.support.offline_api import NoTemporal, offline_api

TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PRIVATE, PUBLIC = generate_signing_key("EdDSA")
UUID = "4211aaaa-bbbb-cccc-dddd-eeeeffff0001"


def _api(temporal: NoTemporal) -> httpx.AsyncClient:
    return offline_api(temporal, TOKEN)


def _link(**body: Any) -> dict[str, Any]:
    return {"provider": "vmware", "cloud_account": "vc01:acme", "customer": "acme", "vcenter_public_keys": [PUBLIC],
            "vcenter_scope": "DC0/vm/acme", **body}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_link(vcenter_scope=None), "vcenter_scope"),  # a further link of a vCenter needs its folder
        ({k: v for k, v in _link().items() if k != "vcenter_scope"}, "vcenter_scope"),
        (_link(cloud_account="vc01:acme:x"), "cloud_account"),
        (_link(cloud_account="vc01:"), "cloud_account"),
        (_link(cloud_account="vc01/acme"), "cloud_account"),
        (_link(cloud_account=":acme"), "cloud_account"),
    ],
)
async def test_a_bad_shared_vcenter_link_is_400_naming_the_field(body: dict[str, Any], field: str) -> None:
    temporal = NoTemporal()
    async with _api(temporal) as api:
        response = await api.post("/v1/admin/links", json=body, headers=AUTH)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert temporal.calls == 0


async def test_link_ids_pass_the_body_and_path_rules() -> None:
    """Each reaches Temporal (unreachable here: 503), so its input was accepted."""
    temporal = NoTemporal()
    async with _api(temporal) as api:
        answers = [
            await api.post("/v1/admin/links", json=_link(), headers=AUTH),
            await api.post("/v1/admin/links", json=_link(cloud_account="vc01", vcenter_scope=None), headers=AUTH),
            await api.get("/v1/admin/links/vmware/vc01:acme", headers=AUTH),
            await api.post("/v1/admin/offboard", json={"provider": "vmware", "account": "vc01:acme"}, headers=AUTH),
            await api.post("/v1/admin/instances/remove", json={"provider": "vmware", "instance_key": f"vc01:acme/{UUID}"},
                           headers=AUTH),
            await api.post("/v1/admin/reconcile", json={"provider": "vmware", "account": "vc01:acme"}, headers=AUTH),
        ]
        bad = await api.get("/v1/admin/links/vmware/vc01:acme:x", headers=AUTH)
    assert [a.status_code for a in answers] == [503] * len(answers), [a.text for a in answers]
    assert bad.status_code == 400 and bad.json()["field"] == "cloud_account", bad.text


def test_openapi_states_link_ids_and_the_overlap_conflict() -> None:
    document = create_app(Settings(), TemporalGateway(NoTemporal())).openapi()
    account = document["components"]["schemas"]["VmwareLink"]["properties"]["cloud_account"]
    assert ":" in account["pattern"] and "vc01:acme" in account["examples"]
    assert "409" in document["paths"]["/v1/admin/links"]["post"]["responses"]
    # The document states that a VCENTER:NAME link names its folder: the rule the 400 above enforces.
    schemas = document["components"]["schemas"]
    schema = json.loads(json.dumps({"$defs": schemas, **schemas["VmwareLink"]}).replace("#/components/schemas/", "#/$defs/"))
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(_link()) and validator.is_valid(_link(cloud_account="vc01", vcenter_scope=None))
    assert not validator.is_valid({k: v for k, v in _link().items() if k != "vcenter_scope"})
    assert not validator.is_valid(_link(vcenter_scope=None))


async def test_the_api_verifies_a_token_with_its_links_keys_and_names_the_link_in_the_key() -> None:
    acme_private, acme_public = generate_signing_key("EdDSA")
    looked_up: list[str] = []

    async def keys(link: str) -> list[str] | None:
        looked_up.append(link)
        return {"vc01:acme": [acme_public], "vc01:globex": [PUBLIC]}.get(link)

    proof = IdentityProof(Settings(), keys)
    now = datetime.now(UTC)

    def identity(private: str, link: str) -> Any:
        from clients.api.registration_input import VmwareIdentity

        token = issue_token(private, vcenter_id="vc01", instance_uuid=UUID, customer="acme", now=now,
                            ttl=timedelta(hours=1), link=link)
        return VmwareIdentity(token=token, bios_uuid=UUID)

    assert await proof.verify(identity(acme_private, "vc01:acme"), f"vc01:acme/{UUID}", None) == f"vc01:acme/{UUID}"
    with pytest.raises(IdentityRefused) as caught:  # signed with acme's key, but naming globex's link
        await proof.verify(identity(acme_private, "vc01:globex"), f"vc01:globex/{UUID}", None)
    assert caught.value.type == ErrorType.IDENTITY_KEY_UNKNOWN  # its kid names no key of globex's link
    with pytest.raises(IdentityRefused) as caught:  # a link nobody linked
        await proof.verify(identity(acme_private, "vc01:initech"), f"vc01:initech/{UUID}", None)
    assert caught.value.type == ErrorType.IDENTITY_KEY_UNKNOWN
    with pytest.raises(IdentityRefused):  # the key the API derived must be the one claimed
        await proof.verify(identity(acme_private, "vc01:acme"), f"vc01/{UUID}", None)
    assert looked_up == ["vc01:acme", "vc01:globex", "vc01:initech", "vc01:acme"]


class _Links:
    def __init__(self, links: list[TenantLink]) -> None:
        self.links = links

    async def execute_workflow(self, *args: Any, **kwargs: Any) -> LinkCommandResult:
        return LinkCommandResult(links=list(self.links))


class _Gateway:
    def __init__(self, client: _Links) -> None:
        self._client = client

    async def client(self) -> _Links:
        return self._client


async def test_the_key_cache_holds_each_link_of_a_vcenter_apart() -> None:
    _, acme_public = generate_signing_key("EdDSA")
    links = [TenantLink(provider=Provider.VMWARE, cloud_account="vc01", customer="umbrella", vcenter_public_keys=[PUBLIC]),
             TenantLink(provider=Provider.VMWARE, cloud_account="vc01:acme", customer="acme",
                        vcenter_public_keys=[acme_public], vcenter_scope="DC0/vm/acme")]
    cache = VcenterKeyCache(_Gateway(_Links(links)), Settings())  # type: ignore[arg-type]
    assert await cache("vc01:acme") == [acme_public]
    assert await cache("vc01") == [PUBLIC]
    assert await cache("vc01:globex") is None


def test_links_add_name_makes_a_further_link_of_the_vcenter(links_add: Callable[..., tuple[Result, list[dict[str, Any]]]]) -> None:
    result, sent = links_add("--vcenter", "vc01", "--name", "acme", "--folder", "DC0/vm/acme")
    assert result.exit_code == 0, result.output
    assert (sent[0]["cloud_account"], sent[0]["vcenter_scope"]) == ("vc01:acme", "DC0/vm/acme")
    assert "vmware/vc01:acme" in result.output
    refused = CliRunner().invoke(links_cmd.app, ["add", "--customer", "acme", "--gcp-project", "acme-prod", "--name", "x"])
    assert refused.exit_code == 2 and len(sent) == 1


def test_links_show_reads_one_link_by_its_id(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str]] = []

    def call(_settings: Any, method: str, path: str) -> dict[str, Any]:
        asked.append((method, path))
        return {"provider": "vmware", "cloud_account": "vc01:acme", "customer": "acme", "vcenter_scope": "DC0/vm/acme"}

    monkeypatch.setattr(links_cmd, "call", call)
    result = CliRunner().invoke(links_cmd.app, ["show", "vmware", "vc01:acme"])
    assert result.exit_code == 0, result.output
    assert asked == [("GET", "/v1/admin/links/vmware/vc01:acme")]
    assert '"vcenter_scope": "DC0/vm/acme"' in result.output


def test_links_list_shows_each_links_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    def call(_settings: Any, method: str, path: str, params: Any = None) -> dict[str, Any]:
        return {"links": [
            {"provider": "vmware", "cloud_account": f"vc01:{c}", "customer": c, "default_patch_group": "on-time",
             "time_zone": "UTC", "role_arn": None, "vcenter_public_keys": [PUBLIC], "vcenter_scope": f"DC0/vm/{c}"}
            for c in ("acme", "globex")]}

    monkeypatch.setattr(links_cmd, "call", call)
    # A wide terminal: the CLI's console is made once per process (its width fixed then), so the
    # test sets its own rather than COLUMNS, which an earlier test may have read first.
    monkeypatch.setattr(common, "console", Console(width=200))
    result = CliRunner().invoke(links_cmd.app, ["list"])
    assert result.exit_code == 0, result.output
    for customer in ("acme", "globex"):
        assert f"vc01:{customer}" in result.output and f"1 key(s) in DC0/vm/{customer}" in result.output


def test_issue_tokens_of_a_further_link_needs_its_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETPATCH_VMWARE__VCENTERS", '{"vc01": {"url": "http://127.0.0.1:9/sdk"}}')
    for args, says in ((["--vcenter", "vc01:acme", "--customer", "acme"], "--folder"),
                       (["--vcenter", "vc01:a:b", "--customer", "acme"], "neither"),
                       (["--vcenter", "vc02:acme", "--customer", "acme", "--folder", "DC0/vm/acme"], "unknown vCenter 'vc02'")):
        result = CliRunner().invoke(vcenter_cmd.app, ["issue-tokens", *args])
        assert result.exit_code == 2 and says in result.output, result.output

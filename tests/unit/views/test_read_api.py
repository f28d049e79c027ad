"""The estate read API: numbers, filters, pages, CSV, the audit chain, CVEs, trends, and 400s."""

from __future__ import annotations

import csv
import io

import pytest

from tests.support import estate_fleet
from tests.unit.views.conftest import ADMIN, bearer

COUNTERS = ("instances", "compliant", "non_compliant", "unknown", "missing", "failed", "critical_missing")


def test_compliance_totals_and_groups_match_the_store(api) -> None:
    body = api.get("/v1/compliance", params=[("group_by", "customer"), ("group_by", "provider")],
                   headers=bearer(ADMIN)).json()
    assert {k: body["totals"][k] for k in COUNTERS} == {k: estate_fleet.expected()[k] for k in COUNTERS}
    assert body["group_by"] == ["customer", "provider"]
    per_customer: dict[str, int] = {}
    for group in body["groups"]:
        per_customer[group["customer"]] = per_customer.get(group["customer"], 0) + group["instances"]
    assert per_customer == {c: estate_fleet.expected(c)["instances"] for c in estate_fleet.CUSTOMERS}
    assert {(g["customer"], g["provider"]) for g in body["groups"]} == {
        (c, p) for _, c, p, _ in estate_fleet.ACCOUNTS}
    assert body["as_of"].startswith("2026-11-10T02:00")


def test_compliance_names_the_oses_a_customers_later_rings_hold(api, customer_tokens) -> None:
    """acme's late Ubuntu instance was only scanned (no early Ubuntu); globex's was, then a newer
    run installed its train: only acme is held, and a customer token sees its own hold only."""
    note = {"customer": "acme", "os": ["ubuntu"], "note": "ubuntu: held: no early instance of this OS"}
    for query in ([], [("group_by", "customer")]):
        assert api.get("/v1/compliance", params=query, headers=bearer(ADMIN)).json()["held"] == [note]
    assert api.get("/v1/compliance", headers=bearer(customer_tokens["acme"])).json()["held"] == [note]
    assert api.get("/v1/compliance", headers=bearer(customer_tokens["globex"])).json()["held"] == []
    assert api.get("/v1/compliance", headers=bearer(customer_tokens["initech"])).json()["held"] == []


@pytest.mark.parametrize(("params", "field"), [
    ({"group_by": "colour"}, "group_by.0"),
    ({"group_by": "customer; drop table"}, "group_by.0"),
])
def test_compliance_refuses_unknown_group_keys_naming_the_field(api, params, field) -> None:
    answer = api.get("/v1/compliance", params=params, headers=bearer(ADMIN))
    assert answer.status_code == 400
    assert answer.json()["error"] == "BadRequest" and answer.json()["field"] == field


def test_reads_need_a_valid_token(api) -> None:
    assert api.get("/v1/compliance").status_code == 401
    assert api.get("/v1/instances", headers=bearer("fpt_0123456789abcdef_" + "x" * 43)).status_code == 401
    assert api.get("/v1/instances", headers={"Authorization": "Basic YTpi"}).status_code == 401
    assert api.get("/v1/instances", headers=bearer("y" * 5000)).status_code == 401


def test_instances_pages_walk_every_row_once(api) -> None:
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        body = api.get("/v1/instances", params=params, headers=bearer(ADMIN)).json()
        seen += [row["managed_instance_id"] for row in body["instances"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == estate_fleet.expected()["instances"]
    assert pages == -(-len(seen) // 7)


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 5000}, "limit"), ({"compliance": "maybe"}, "compliance"),
    ({"cve": "CVE-24-1"}, "cve"), ({"provider": "oracle"}, "provider"), ({"patch_group": "never"}, "patch_group"),
    ({"cursor": "not a cursor"}, "cursor"), ({"customer": "<script>"}, "customer"),
])
def test_instances_refuse_bad_filters_naming_the_field(api, params, field) -> None:
    answer = api.get("/v1/instances", params=params, headers=bearer(ADMIN))
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field


def test_instances_filters(api) -> None:
    rows = api.get("/v1/instances", params={"compliance": "non_compliant", "provider": "gcp"},
                   headers=bearer(ADMIN)).json()["instances"]
    assert rows and all(r["compliance"] == "non_compliant" and r["provider"] == "gcp" for r in rows)
    exposed = api.get("/v1/instances", params={"cve": "CVE-2024-3094"}, headers=bearer(ADMIN)).json()["instances"]
    assert exposed and all(r["missing"] > 0 and not r["os"].startswith("Microsoft") for r in exposed)


def test_instances_as_csv(api) -> None:
    answer = api.get("/v1/instances", params={"limit": 1000}, headers={**bearer(ADMIN), "Accept": "text/csv"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == estate_fleet.expected()["instances"]
    assert {"managed_instance_id", "customer", "compliance", "missing"} <= set(rows[0])
    assert sum(int(r["missing"]) for r in rows) == estate_fleet.expected()["missing"]


def test_instance_detail_is_the_audit_chain(api) -> None:
    mid = estate_fleet.mid(0, 1)
    body = api.get(f"/v1/instances/{mid}", headers=bearer(ADMIN)).json()
    assert body["managed_instance_id"] == mid and body["compliance"] == "non_compliant"
    assert body["evidence"]["key_id"] == "kid-gcp" and body["evidence"]["digest"] == "ab" * 32
    assert body["enrollment"]["workflow_id"] == "enroll/gcp/acme-prod/vm-1"
    assert body["enrollment"]["temporal_ui"] == (
        "http://127.0.0.1:8233/namespaces/default/workflows/enroll%2Fgcp%2Facme-prod%2Fvm-1/run-0-1/history")
    assert body["baseline"]["name"] == "fleetpatch-gcp"
    assert {p["state"] for p in body["patches"]} >= {"Missing", "Installed"}
    assert body["inventory"][0]["name"] == "openssl"
    windows = api.get(f"/v1/instances/{estate_fleet.mid(0, 0)}", headers=bearer(ADMIN)).json()["windows"]
    assert windows[0]["outcome"] == "succeeded" and windows[0]["installed"] == 3


def test_instance_detail_404_and_400(api) -> None:
    assert api.get("/v1/instances/mi-00000000fffffffff", headers=bearer(ADMIN)).status_code == 404
    bad = api.get("/v1/instances/not-an-id", headers=bearer(ADMIN))
    assert bad.status_code == 400 and bad.json()["field"] == "managed_instance_id"


def test_cve_exposure_groups_by_customer_and_provider(api) -> None:
    body = api.get("/v1/cves/CVE-2024-38063", headers=bearer(ADMIN)).json()
    windows_missing = sum(1 for s in estate_fleet.snapshots() for i in s.instances if i.missing and "Windows" in i.os_name)
    assert body["instances"] == windows_missing
    assert {(g["customer"], g["provider"]) for g in body["groups"]} <= {(c, p) for _, c, p, _ in estate_fleet.ACCOUNTS}
    assert api.get("/v1/cves/log4shell", headers=bearer(ADMIN)).json()["field"] == "cve_id"


def test_trend_has_one_point_per_aggregate(api) -> None:
    body = api.get("/v1/compliance/trend", params={"days": 3650 // 10}, headers=bearer(ADMIN)).json()
    times = sorted({p["at"] for p in body["points"]})
    assert len(times) == 2
    assert api.get("/v1/compliance/trend", params={"days": 0}, headers=bearer(ADMIN)).json()["field"] == "days"


def test_openapi_declares_the_estate_routes(api) -> None:
    doc = api.get("/openapi.json").json()
    for path in ("/v1/compliance", "/v1/compliance/trend", "/v1/instances", "/v1/instances/{managed_instance_id}",
                 "/v1/cves/{cve_id}", "/v1/admin/tokens", "/v1/admin/tokens/{token_id}"):
        assert path in doc["paths"], path
    assert "422" not in doc["paths"]["/v1/instances"]["get"]["responses"]
    assert doc["paths"]["/v1/instances"]["get"]["responses"]["200"]["links"]["instance"]["operationId"] == "get_instance"

"""Customer tokens read their own customer's rows only, whatever they ask; admin routes refuse them.

The property test drives the HTTP routes with arbitrary filters (other customers' names included)
and finds no row, group, exposure or trend point of another customer.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import estate_fleet
from tests.unit.views.conftest import ADMIN, bearer

NAMES = list(estate_fleet.CUSTOMERS) + ["ACME", "acme ", "nobody"]
IDS = [estate_fleet.mid(a, n) for a in range(len(estate_fleet.ACCOUNTS)) for n in range(estate_fleet.PER_ACCOUNT)]
OWNER = {estate_fleet.mid(a, n): c for a, (_, c, _, _) in enumerate(estate_fleet.ACCOUNTS)
         for n in range(estate_fleet.PER_ACCOUNT)}

filters = st.fixed_dictionaries({}, optional={
    "customer": st.sampled_from(NAMES),
    "provider": st.sampled_from(["gcp", "azure", "aws", "vmware"]),
    "patch_group": st.sampled_from(["early", "on-time", "late"]),
    "compliance": st.sampled_from(["compliant", "non_compliant", "unknown"]),
    "cve": st.sampled_from(["CVE-2024-3094", "CVE-2024-38063", "CVE-2021-44228"]),
    "systems_account": st.sampled_from([a for a, _, _, _ in estate_fleet.ACCOUNTS]),
    "include_departed": st.booleans(),
    "limit": st.integers(1, 50),
})
group_bys = st.lists(st.sampled_from(["customer", "provider", "patch_group", "systems_account", "os"]),
                     max_size=3, unique=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(who=st.sampled_from(estate_fleet.CUSTOMERS), query=filters, keys=group_bys,
       probe=st.sampled_from(IDS), cve=st.sampled_from(["CVE-2024-3094", "CVE-2024-38063"]))
def test_no_filter_leaks_another_customer(api, customer_tokens, who, query, keys, probe, cve) -> None:
    auth = bearer(customer_tokens[who])
    rows = api.get("/v1/instances", params=query, headers=auth).json()["instances"]
    assert all(r["customer"] == who for r in rows)
    report = api.get("/v1/compliance", params=[("group_by", k) for k in keys], headers=auth).json()
    assert report["totals"]["instances"] == estate_fleet.expected(who)["instances"]
    assert all(g.get("customer", who) == who for g in report["groups"])
    detail = api.get(f"/v1/instances/{probe}", headers=auth)
    assert detail.status_code == (200 if OWNER[probe] == who else 404)
    exposure = api.get(f"/v1/cves/{cve}", headers=auth).json()
    assert all(g["customer"] == who for g in exposure["groups"])
    points = api.get("/v1/compliance/trend", params={"customer": query.get("customer", who)}, headers=auth).json()
    assert all(p["customer"] in (who, None) for p in points["points"])
    if query.get("customer", who) != who:
        assert rows == [] and all(p["instances"] == 0 for p in points["points"])


def test_customer_totals_equal_its_own_rows(api, customer_tokens) -> None:
    for who in estate_fleet.CUSTOMERS:
        body = api.get("/v1/compliance", headers=bearer(customer_tokens[who])).json()
        assert body["totals"] == {k: estate_fleet.expected(who)[k] for k in body["totals"]}


def test_admin_routes_answer_customer_tokens_403(api, customer_tokens) -> None:
    auth = bearer(customer_tokens["acme"])
    assert api.get("/v1/admin/tokens", headers=auth).status_code == 403
    assert api.post("/v1/admin/tokens", json={"customer": "acme"}, headers=auth).status_code == 403
    assert api.delete("/v1/admin/tokens/0123456789abcdef", headers=auth).status_code == 403
    assert api.get("/v1/admin/windows", headers=auth).status_code == 403


def test_tokens_issue_list_revoke_over_the_api(api) -> None:
    issued = api.post("/v1/admin/tokens", json={"customer": "globex", "label": "globex portal"}, headers=bearer(ADMIN))
    assert issued.status_code == 201
    token, token_id = issued.json()["token"], issued.json()["id"]
    rows = api.get("/v1/instances", params={"limit": 1000}, headers=bearer(token)).json()["instances"]
    assert rows and {r["customer"] for r in rows} == {"globex"}
    listed = api.get("/v1/admin/tokens", headers=bearer(ADMIN)).json()["tokens"]
    mine = [t for t in listed if t["id"] == token_id]
    assert mine and mine[0]["customer"] == "globex" and token not in str(listed)
    assert api.delete(f"/v1/admin/tokens/{token_id}", headers=bearer(ADMIN)).json() == {"id": token_id, "revoked": True}
    assert api.get("/v1/instances", headers=bearer(token)).status_code == 401
    assert api.delete("/v1/admin/tokens/ffffffffffffffff", headers=bearer(ADMIN)).status_code == 404
    bad = api.post("/v1/admin/tokens", json={"customer": ""}, headers=bearer(ADMIN))
    assert bad.status_code == 400 and bad.json()["field"] == "customer"

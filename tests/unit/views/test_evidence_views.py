"""Identity evidence recorded by enrollments, as the API, ``fleetpatch instances show`` and the
dashboard's instance page show it (a real browser: Debian's chromium through Playwright)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright
from typer.testing import CliRunner

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from clients.cli.main import app as cli_app
from contracts.evidence import EnrollmentEvidence
from estate import db, evidence
from tests.support import estate_fleet
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, screenshot_path, serve
from tests.unit.views.conftest import ADMIN, bearer

VERIFIED = datetime(2026, 11, 9, 23, 59, 1, tzinfo=UTC)
GCP = estate_fleet.mid(0, 1)  # acme, gcp acme-prod/vm-1
VMWARE = estate_fleet.mid(3, 2)  # globex, vmware vc-dc1/vm-2
KID = "0e72da1df501ca6f756bf103fd7c720294772506"
LINK_KEY = "sha256:" + "5e" * 32
DIGESTS = {GCP: hashlib.sha256(b"gcp identity").hexdigest(), VMWARE: hashlib.sha256(b"vmware identity").hexdigest()}


async def _no_temporal():
    raise ConnectionError("no Temporal in this test")


def _proof(mid: str, provider: str, key: str, customer: str, kind: str, key_id: str) -> EnrollmentEvidence:
    return EnrollmentEvidence(
        workflow_id=f"enroll/{provider}/{key}", run_id=f"run-evidence-{mid}", provider=provider, instance_key=key,
        identity_sha256=DIGESTS[mid], verified_at=VERIFIED, key_kind=kind, key_id=key_id, customer=customer,
        managed_instance_id=mid,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("evidence")
    url = estate_fleet.settings_for(state).database_url
    estate_fleet.seed(url)
    engine = db.make_engine(url)
    with db.transaction(db.sessions(engine)) as session:
        evidence.record(session, _proof(GCP, "gcp", "acme-prod/vm-1", "acme", "kid", KID))
        evidence.record(session, _proof(VMWARE, "vmware", "vc-dc1/vm-2", "globex", "link_key_sha256", LINK_KEY))
    engine.dispose()
    app = create_app(estate_fleet.settings_for(state, ADMIN), TemporalGateway(_no_temporal))
    with serve(app) as base:
        yield base


def test_the_api_answers_the_recorded_evidence_and_enrollment(site) -> None:
    body = httpx.get(f"{site}/v1/instances/{GCP}", headers=bearer(ADMIN)).json()
    assert body["evidence"] == {"provider": "gcp", "key_kind": "kid", "key_id": KID, "digest": DIGESTS[GCP],
                                "verified_at": "2026-11-09T23:59:01+00:00"}
    assert body["enrollment"]["workflow_id"] == "enroll/gcp/acme-prod/vm-1"
    assert body["enrollment"]["run_id"] == f"run-evidence-{GCP}"
    assert body["enrollment"]["temporal_ui"].endswith(f"/run-evidence-{GCP}/history")


def test_instances_show_prints_the_evidence(site, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FLEETPATCH_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("FLEETPATCH_API_URL", site)
    monkeypatch.setenv("FLEETPATCH_ADMIN_TOKEN", ADMIN)
    monkeypatch.delenv("FLEETPATCH_TOKEN", raising=False)
    shown = CliRunner().invoke(cli_app, ["instances", "show", VMWARE], env={"COLUMNS": "120"})
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.stdout.splitlines() if x.strip().startswith("identity"))
    assert "vmware signature" in line and f"vCenter link key {LINK_KEY}" in line
    assert DIGESTS[VMWARE] in shown.stdout.replace("\n", "").replace(" ", "")  # whole, even when wrapped
    assert "verified 2026-11-09T23:59:01" in shown.stdout
    assert f"run run-evidence-{VMWARE}" in shown.stdout


def test_the_instance_page_shows_the_evidence(site) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.goto(f"{site}/dashboard/signin")
            page.fill("#token", ADMIN)
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{site}/dashboard")
            page.goto(f"{site}/dashboard/instances/{GCP}")
            chain = page.locator('[data-testid="evidence"]')
            expect(chain.locator('[data-field="evidence-provider"]')).to_have_text("gcp")
            expect(chain.locator('[data-field="evidence-key"]')).to_have_text(KID)
            expect(chain.locator('[data-field="evidence-digest"]')).to_have_text(DIGESTS[GCP])
            expect(chain.locator('[data-field="evidence-verified"]')).to_have_text("2026-11-09 23:59:01")
            expect(chain).to_contain_text("key id")
            expect(page.locator('[data-field="enrollment-run"]')).to_have_text(f"run-evidence-{GCP}")
            page.screenshot(path=str(screenshot_path("instance-evidence")), full_page=True)
        finally:
            browser.close()


def test_a_customer_sees_evidence_of_its_own_instances_only(site) -> None:
    issued = httpx.post(f"{site}/v1/admin/tokens", json={"customer": "acme", "label": "evidence"}, headers=bearer(ADMIN))
    token = issued.json()["token"]
    assert httpx.get(f"{site}/v1/instances/{GCP}", headers=bearer(token)).json()["evidence"]["key_id"] == KID
    assert httpx.get(f"{site}/v1/instances/{VMWARE}", headers=bearer(token)).status_code == 404

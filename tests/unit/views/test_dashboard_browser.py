"""The dashboard in a real browser (Debian's chromium through Playwright): sign in, read the numbers
off the page and compare them with the API; screenshots under artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support import estate_fleet
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, screenshot_path
from tests.unit.views.conftest import ADMIN

METRICS = ("instances", "compliant", "non_compliant", "unknown", "missing", "failed", "critical_missing")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def sign_in(browser: Browser, base: str, token: str) -> Page:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{base}/dashboard")
    expect(page).to_have_url(f"{base}/dashboard/signin")
    page.fill("#token", token)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/dashboard")
    return page


def read_totals(page: Page) -> dict[str, int]:
    return {m: int(page.locator(f'[data-metric="{m}"]').inner_text()) for m in METRICS}


def test_admin_overview_numbers_equal_the_api(site, chromium) -> None:
    page = sign_in(chromium, site, ADMIN)
    api = httpx.get(f"{site}/v1/compliance", params={"group_by": ["customer", "provider"]},
                    headers={"Authorization": f"Bearer {ADMIN}"}).json()
    assert read_totals(page) == {m: api["totals"][m] for m in METRICS}
    for group in api["groups"]:
        cell = page.locator(f'[data-cell="{group["customer"]}|{group["provider"]}"]')
        assert int(cell.locator('[data-field="instances"]').inner_text()) == group["instances"]
        assert int(cell.locator('[data-field="compliant"]').inner_text()) == group["compliant"]
    expect(page.locator('[data-testid="trend"] polyline')).to_have_count(2)
    # acme's later rings only scan Ubuntu (no early Ubuntu in its estate); the matrix says so.
    expect(page.locator('[data-held="acme"]')).to_have_text("ubuntu: held: no early instance of this OS")
    expect(page.locator("[data-held]")).to_have_count(len(api["held"]))
    first = page.locator('[data-testid="failing"] tbody tr').first
    expect(first.locator(".badge")).to_have_text("non compliant")
    page.screenshot(path=str(screenshot_path("overview-admin")), full_page=True)
    first.locator("a").first.click()
    expect(page.locator('[data-testid="chain"]')).to_contain_text("Identity")
    page.screenshot(path=str(screenshot_path("instance")), full_page=True)


def test_customer_sees_its_own_numbers_and_signs_out(site, chromium, customer_tokens) -> None:
    page = sign_in(chromium, site, customer_tokens["acme"])
    assert read_totals(page) == {m: estate_fleet.expected("acme")[m] for m in METRICS}
    expect(page.locator('[data-testid="matrix"]')).not_to_contain_text("globex")
    expect(page.locator('[data-held="acme"]')).to_contain_text("held: no early instance of this OS")
    page.goto(f"{site}/dashboard/cves")
    page.fill('[data-testid="cve-input"]', "CVE-2024-3094")
    page.click("form.filters button")
    count = int(page.locator('[data-testid="cve-count"]').inner_text())
    api = httpx.get(f"{site}/v1/cves/CVE-2024-3094", headers={"Authorization": f"Bearer {customer_tokens['acme']}"})
    assert count == api.json()["instances"]
    page.screenshot(path=str(screenshot_path("cve-customer")), full_page=True)
    page.click('[data-testid="signout"]')
    expect(page).to_have_url(f"{site}/dashboard/signin")
    page.goto(f"{site}/dashboard")
    expect(page).to_have_url(f"{site}/dashboard/signin")


def test_no_page_logs_a_console_error_or_loads_a_missing_resource(site, chromium) -> None:
    """What a new operator's browser console shows on the sign-in page and every page after it:
    nothing (no missing icon, stylesheet or script, no CSP refusal)."""
    page = chromium.new_context().new_page()
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"{m.text} on {page.url}"))
    page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/dashboard/signin")
            and problems.append(f"{r.status} {r.url}"))
    page.goto(f"{site}/dashboard/signin")
    page.fill("#token", ADMIN)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{site}/dashboard")
    for path in ("/dashboard/instances", "/dashboard/cves", "/dashboard/cves?cve=CVE-2024-3094"):
        page.goto(f"{site}{path}")
    page.wait_for_timeout(500)
    assert problems == []

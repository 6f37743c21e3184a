"""Segments and offers in the browser: live counts and the experiment report in the console, "For you" in the portal."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest

from tests.browser.test_accessibility import (  # the axe fixtures and helpers
    audited,  # noqa: F401
    axe_source,  # noqa: F401
    blocking_violations,
    sign_in,
)

pytestmark = pytest.mark.browser


def purchase(member: str, n: int, amount: float) -> dict[str, object]:
    return {
        "id": f"{member}-seg-{n}",
        "member": member,
        "type": "purchase",
        "occurred_at": datetime.now(UTC).isoformat(),
        "properties": {"amount": amount},
    }


def test_segment_count_and_experiment_report_in_the_console(live_server, page):
    """The demo's segments and its double-points experiment; a new big spender raises the live count."""
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/console/segments")
    count = page.locator('tr[data-segment="big-spenders"] [data-count]')
    before = int(count.inner_text())
    member = f"m-seg-{uuid.uuid4().hex[:6]}"
    live_server.member(member, name="Beatrice")
    live_server.events(purchase(member, 1, 75))
    page.reload()
    assert int(count.inner_text()) == before + 1
    assert "spend(purchase, amount, 30d) ≥ 60" in page.locator('tr[data-segment="big-spenders"]').inner_text()

    page.get_by_role("link", name="Offers and experiments").click()
    page.wait_for_url(f"{live_server.url}/console/offers")
    report = page.locator("#report-double-points")
    assert report.locator('tr[data-arm="control"]').count() == 1
    treated = report.locator('tr[data-arm="double"]')
    assert re.search(r"[+-]\d+\.\d\d \[-?\d+\.\d\d, -?\d+\.\d\d\]", treated.locator("[data-uplift]").inner_text())
    assert int(report.locator('tr[data-arm="control"] td').first.inner_text()) > 0


def test_for_you_offers_in_the_portal(live_server, audited, axe_source):  # noqa: F811
    """A new big spender sees the opt-in offer, activates it, and the next purchase earns the bonus."""
    page = audited
    member = f"m-foryou-{uuid.uuid4().hex[:6]}"
    live_server.member(member, name="Carla")
    live_server.events(purchase(member, 1, 80))
    page.goto(live_server.portal_link(member))
    page.get_by_role("link", name="For you").click()
    page.wait_for_url(f"{live_server.url}/portal/offers")
    offer = page.locator('li[data-offer="treat-yourself"]')
    assert "Treat yourself: 50 points" in offer.inner_text()
    assert blocking_violations(page, axe_source) == []  # the list with an activation button
    offer.get_by_role("button", name="Activate").click()
    page.wait_for_url(f"{live_server.url}/portal/offers")
    assert page.locator('li[data-offer="treat-yourself"] [data-state="active"]').count() == 1
    results = live_server.events(purchase(member, 2, 5))
    assert [e["points"] for e in results[0]["effects"] if e.get("key") == "treat-yourself"] == [50]
    page.goto(f"{live_server.url}/portal/offers?lang=it")
    assert page.get_by_role("heading", name="Per te").count() == 1

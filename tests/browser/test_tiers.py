"""A member's tier progress in the portal: the bar towards the next tier, an upgrade on the qualifying purchase."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from tests.browser.test_accessibility import (  # the axe fixtures and helpers
    LANGS,
    audit,
    audited,  # noqa: F401
    axe_source,  # noqa: F401
    blocking_violations,
    sign_in,
)

pytestmark = pytest.mark.browser


def purchase(member: str, n: int, amount: float) -> dict[str, object]:
    return {
        "id": f"{member}-buy-{n}",
        "member": member,
        "type": "purchase",
        "occurred_at": datetime.now(UTC).isoformat(),
        "properties": {"amount": amount},
    }


def test_tier_progress_in_the_portal(live_server, page):
    """The demo's tiers (Bronze from €0, Silver from €100, Gold from €250 spent this year)."""
    member = f"m-tier-{uuid.uuid4().hex[:6]}"
    live_server.member(member, name="Giorgia")
    results = live_server.events(purchase(member, 1, 60))
    assert [e["tier"] for e in results[0]["effects"] if e["type"] == "tier_changed"] == ["bronze"]

    page.goto(live_server.portal_link(member))
    page.get_by_role("link", name="Tier").click()
    page.wait_for_url(f"{live_server.url}/portal/tier")
    assert page.locator("#tier-current").inner_text().startswith("Bronze")
    bar = page.locator("#tier-progress")
    assert bar.get_attribute("max") == "100" and bar.get_attribute("value") == "60"
    assert page.locator("#tier-next").inner_text() == "€40 to Silver"

    results = live_server.events(purchase(member, 2, 50))
    assert [e["tier"] for e in results[0]["effects"] if e["type"] == "tier_changed"] == ["silver"]
    page.reload()
    assert page.locator("#tier-current").inner_text().startswith("Silver")
    assert page.locator("#tier-next").inner_text() == "€140 to Gold"
    assert page.locator("#tier-progress").get_attribute("value") == "7"  # 10 of the 150 between Silver and Gold
    assert page.locator("#tier-history li").count() == 2
    assert "Points ×1.25 on every purchase" in page.locator("main").inner_text()

    page.goto(f"{live_server.url}/portal/tier?lang=it")
    assert page.locator("#tier-next").inner_text() == "€140 per Oro"


def test_tier_pages_with_progress_have_no_serious_violations(live_server, audited, axe_source):  # noqa: F811
    """The portal's Tier page with a tier, a bar and a history, and the console's Tiers page with a simulation."""
    member = f"m-tier-axe-{uuid.uuid4().hex[:6]}"
    live_server.member(member, name="Ilaria")
    live_server.events(purchase(member, 1, 120))
    audited.goto(live_server.portal_link(member))
    urls = [f"{live_server.url}/portal/tier?lang={lang}" for lang in LANGS]
    assert audit(audited, axe_source, urls) == {}
    sign_in(audited, live_server)
    audited.goto(f"{live_server.url}/console/tiers")
    audited.locator("#tier-simulation-form button[type=submit]").click()
    audited.locator("#tier-simulation").wait_for()
    assert blocking_violations(audited, axe_source) == []

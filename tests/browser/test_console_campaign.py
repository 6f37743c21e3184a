"""An admin signs in, creates a campaign with a mistake, sees the error inline, fixes it, and finds it listed."""

from __future__ import annotations

import uuid

import pytest

from tests.browser.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_campaign_mistake_is_shown_inline_then_fixed(live_server, page):
    email = live_server.create_admin()
    suffix = uuid.uuid4().hex[:6]

    page.goto(f"{live_server.url}/console/campaigns/new")
    page.wait_for_url(f"{live_server.url}/console/login?next=/console/campaigns/new")
    page.fill("#f-email", email)
    page.fill("#f-password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/console/campaigns/new")

    page.fill("#f-c_title", f"Autumn reviews {suffix}")
    page.fill("#f-c_key", f"autumn-{suffix}")
    page.fill("#f-ch_title", "Write 3 reviews with 4+ stars")
    page.fill("#f-ch_key", f"autumn-reviews-{suffix}")
    page.select_option("#f-ch_type", "count")
    page.fill("#f-ch_event_type", "review")
    page.fill("#f-ch_target", "three")
    page.fill("#f-ch_filter", "{field: properties.stars, gte: 4}")
    assert page.locator("#f-ch_property").is_hidden()  # the form shows only what a count rule uses
    page.get_by_role("button", name="Create campaign").click()

    error = page.locator("#e-ch_target")
    error.wait_for()
    assert "number" in error.inner_text()
    assert page.locator("#f-ch_target").get_attribute("aria-invalid") == "true"
    assert page.locator("#f-c_title").input_value() == f"Autumn reviews {suffix}"  # nothing typed is lost

    page.fill("#f-ch_target", "3")
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url(f"{live_server.url}/console/campaigns?ok=created")
    campaign = page.locator(f"[data-campaign='autumn-{suffix}']")
    assert f"Autumn reviews {suffix}" in campaign.inner_text()
    assert "Write 3 reviews with 4+ stars" in campaign.inner_text()
    assert page.get_by_role("status").first.inner_text() == "Created."

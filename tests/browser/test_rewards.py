"""A member redeems a reward in the portal and sees the code; the console shows the redemption and the liability."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.browser.test_accessibility import sign_in

pytestmark = pytest.mark.browser


def test_a_member_redeems_and_the_console_shows_it(live_server, page):
    member = f"m-rewards-{uuid.uuid4().hex[:6]}"
    live_server.member(member, name="Giulia")
    funded = live_server.api.post(f"/v1/members/{member}/points/adjustments", json={"points": 500, "reason": "test"})
    assert funded.status_code == 201, funded.text

    page.goto(live_server.portal_link(member))
    page.locator("nav.tabs a[href='/portal/rewards']").click()
    page.wait_for_url(f"{live_server.url}/portal/rewards")
    tile = page.locator("#rewards-affordable [data-reward='voucher-5']")
    assert "€5 voucher" in tile.inner_text()
    assert page.locator("#rewards-missing [data-reward='masterclass'] [data-missing='1000']").count() == 1
    tile.locator("a.btn").click()
    page.wait_for_url(f"{live_server.url}/portal/rewards/voucher-5/redeem")
    assert "350" in page.locator("dl.kv").inner_text()  # what is left after redeeming
    page.locator("#confirm-redeem").click()
    page.wait_for_url(re.compile(r".*/portal/rewards/redemptions/rdm_[0-9a-f]+$"))
    code = page.locator("#redemption-code").inner_text()
    assert re.fullmatch(r"V5-[0-9A-F]{6}", code), code
    assert page.locator("figure.qr svg").count() == 1
    assert page.locator("#points-chip").inner_text().startswith("350")

    console = page.context.browser.new_page()
    try:
        sign_in(console, live_server)
        console.goto(f"{live_server.url}/console/redemptions?q={member}")
        row = console.locator("#redemption-list tbody tr")
        assert row.count() == 1 and code in row.inner_text()
        console.goto(f"{live_server.url}/console/liability")
        chart = console.locator("svg[aria-labelledby='c-expiries-t c-expiries-d']")
        chart.wait_for()
        assert chart.locator("rect.chart-bar").count() >= 1
        console.locator("details.data summary").first.click()
        assert console.locator("details.data table").first.is_visible()
    finally:
        console.close()

"""A leaderboard widget embedded by another origin renders, sizes itself, and moves live when an event arrives."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from tests.browser.servers import PUBLISHABLE_KEY

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"


def test_widget_from_another_origin_renders_resizes_and_updates_live(live_server, host_site, page):
    live_server.allow_origin(host_site.origin)
    member = f"m-widget-{uuid.uuid4().hex[:6]}"
    live_server.member(member, name=XSS)
    token = live_server.widget_token(member)
    url = host_site.page(
        "embed.html",
        f"""<h1>Our best customers</h1>
<script src="{live_server.url}/static/widget.js" data-board="weekly-points" data-key="{PUBLISHABLE_KEY}"
 data-theme="dark" data-accent="#0a7f5a" data-rows="5" data-member="{token}" async></script>""",
    )
    page.goto(url)
    iframe = page.locator("iframe.questline-widget")
    frame = page.frame_locator("iframe.questline-widget")
    frame.locator("#rows li").first.wait_for()
    frame.locator("body[data-live=on]").wait_for()
    page.wait_for_function(
        "document.querySelector('iframe.questline-widget').style.height !== '360px'"
    )  # the widget told the host its height (postMessage to this exact origin)
    assert frame.locator("li.me").count() == 0  # not on the board yet

    live_server.events(
        {
            "id": f"{member}-big",
            "member": member,
            "type": "purchase",
            "occurred_at": datetime.now(UTC).isoformat(),
            "properties": {"amount": 9000},
        }
    )
    me = frame.locator("li.me")
    me.wait_for()
    assert me.locator(".rank").inner_text() == "1"
    assert me.locator(".name").inner_text().startswith(XSS)  # text, not markup
    assert frame.locator("img[src='x']").count() == 0
    box = iframe.bounding_box()
    assert box is not None and box["height"] > 200


def test_a_site_not_on_the_allow_list_cannot_frame_the_widget(live_server, page):
    other = "http://localhost:9"  # never allowed
    page.set_content(
        f'<iframe id="w" src="{live_server.url}/widgets/leaderboard/weekly-points?key={PUBLISHABLE_KEY}"></iframe>',
    )
    page.wait_for_timeout(500)
    frame = page.frame_locator("#w")
    assert frame.locator("#rows").count() == 0, other  # frame-ancestors blocked the page

"""A member sees the unread badge appear live in the portal header, reads the feed and marks it read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.browser


def test_unread_badge_arrives_live_and_the_feed_is_read(live_server, page):
    suffix = uuid.uuid4().hex[:6]
    challenge, badge, member = f"hello-{suffix}", f"greeter-{suffix}", f"m-notify-{suffix}"
    live_server.add_to_program(
        campaigns=[{"key": f"notify-{suffix}", "title": "Notify campaign"}],
        challenges=[
            {
                "key": challenge,
                "campaign": f"notify-{suffix}",
                "title": "Say hello",
                "rule": {"type": "count", "event_type": "notify_ping", "target": 1},
                "reward": {"points": 5, "badge": badge},
            }
        ],
        badges=[{"key": badge, "name": "Greeter", "description": "Said hello."}],
    )
    live_server.member(member, name="Nora")
    page.goto(live_server.portal_link(member))
    bell = page.locator("#notifications-link")
    assert bell.get_attribute("data-value") == "0"
    page.locator("html[data-live=on]").wait_for()
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    ping = {"id": f"{member}-1", "member": member, "type": "notify_ping", "occurred_at": datetime.now(UTC).isoformat()}
    live_server.events({**ping, "properties": {}})
    # The feed worker derives the challenge and the badge, the live stream refreshes the header in place.
    page.locator("#notifications-link[data-value='2'] .badge-count").wait_for(timeout=15_000)
    assert navigations == []

    bell.click()
    page.wait_for_url(f"{live_server.url}/portal/notifications")
    items = page.locator(".feed-item.unread")
    assert items.count() == 2
    assert "You earned the badge Greeter." in page.locator(".feed").inner_text()
    page.get_by_role("button", name="Mark all as read").click()
    page.wait_for_url(f"{live_server.url}/portal/notifications")
    assert page.locator(".feed-item.unread").count() == 0
    assert page.locator("#notifications-link").get_attribute("data-value") == "0"
    assert page.locator("#notifications-link .badge-count").count() == 0

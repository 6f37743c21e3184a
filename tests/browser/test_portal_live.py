"""A member opens the portal; events arrive; the progress bar and the badge shelf change without a reload."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"


def visit(member: str, n: int) -> dict[str, object]:
    return {
        "id": f"{member}-ping-{n}",
        "member": member,
        "type": "browser_ping",
        "occurred_at": datetime.now(UTC).isoformat(),
        "properties": {},
    }


def test_progress_and_badges_update_live(live_server, page):
    suffix = uuid.uuid4().hex[:6]
    challenge, badge, member = f"pings-{suffix}", f"pinger-{suffix}", f"m-browser-{suffix}"
    live_server.add_to_program(
        campaigns=[{"key": f"browser-{suffix}", "title": "Browser campaign"}],
        challenges=[
            {
                "key": challenge,
                "campaign": f"browser-{suffix}",
                "title": "Ping twice",
                "rule": {"type": "count", "event_type": "browser_ping", "target": 2},
                "reward": {"points": 25, "badge": badge},
            }
        ],
        badges=[{"key": badge, "name": "Pinger", "description": "Pinged twice."}],
    )
    live_server.member(member, name=XSS)

    page.goto(live_server.portal_link(member, page="challenges"))
    assert page.url == f"{live_server.url}/portal/challenges"
    bar = page.locator(f"#pb-{challenge}")
    assert bar.get_attribute("value") == "0.0"
    page.locator("html[data-live=on]").wait_for()
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    live_server.events(visit(member, 1))
    # Swapped in live, without a reload (the script animates the bar to its new value, 1).
    page.locator(f"#pb-{challenge}[value='1'], #pb-{challenge}[value='1.0']").wait_for()
    assert page.locator(f"[data-progress='{challenge}']").inner_text() == "1"
    assert page.locator("#live-status").inner_text() != ""
    assert navigations == []  # the page was updated in place, not reloaded

    page.goto(f"{live_server.url}/portal/badges")
    page.locator("html[data-live=on]").wait_for()
    assert page.locator(f"#shelf-earned [data-badge='{badge}']").count() == 0
    live_server.events(visit(member, 2))
    page.locator(f"#shelf-earned [data-badge='{badge}']").wait_for()
    assert navigations == [f"{live_server.url}/portal/badges"]  # only our own navigation
    assert "Pinger" in page.locator(f"#shelf-earned [data-badge='{badge}']").inner_text()

    page.goto(f"{live_server.url}/portal")
    hello = page.locator("#hello").inner_text()
    assert XSS in hello  # shown as text ...
    assert page.locator("img[src='x']").count() == 0  # ... never as an element
    assert page.locator("#points-chip").inner_text().startswith("25")


def test_the_portal_works_on_a_phone_in_italian(live_server, chromium):
    member = f"m-phone-{uuid.uuid4().hex[:6]}"
    live_server.member(member, name="Giulia", locale="it")
    context = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        phone = context.new_page()
        phone.goto(live_server.portal_link(member))
        assert phone.locator("#hello").inner_text() == "Ciao Giulia!"
        tabs = phone.locator("nav.tabs")
        box = tabs.bounding_box()
        assert box is not None and box["y"] > 700  # the tab bar sits at the bottom of a phone screen
        phone.locator("nav.tabs a[href='/portal/badges']").click()
        phone.wait_for_url(f"{live_server.url}/portal/badges")
        assert phone.locator("h1").inner_text() == "I tuoi badge"
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # nothing overflows sideways
    finally:
        context.close()

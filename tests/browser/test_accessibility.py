"""Accessibility in a real browser: axe-core over the portal, console and widgets in both languages, and the
keyboard: skip links, focus kept across a live update, the update announced, no sideways scroll at 320 px.

axe-core comes from the npm registry (``npm install --prefix .cache/axe axe-core@4``, which ``.ci/run`` does)
and is injected into each page by Playwright; ``QUESTLINE_AXE_JS`` may point at another ``axe.min.js``.
Without it these tests skip locally and fail under ``CI=true``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import PASSWORD
from tests.browser.servers import PUBLISHABLE_KEY, ROOT
from tests.browser.test_webhooks_console import webhook_endpoint, webhook_receiver
from tests.conftest import CI
from tests.wallet_chain import apple_settings, google_settings

pytestmark = pytest.mark.browser

AXE_JS = Path(os.environ.get("QUESTLINE_AXE_JS", ROOT / ".cache/axe/node_modules/axe-core/axe.min.js"))
#: WCAG 2.1 A and AA rules (and axe's best practices, which include landmarks and unique ids).
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}}
BLOCKING = ("serious", "critical")
LANGS = ("en", "it")


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE_JS.is_file():
        message = f"axe-core not found at {AXE_JS} (npm install --prefix .cache/axe axe-core@4)"
        if CI:
            pytest.fail(f"{message}; under CI=true a missing axe-core is a failure", pytrace=False)
        pytest.skip(message)
    return AXE_JS.read_text(encoding="utf-8")


@pytest.fixture
def audited(chromium: Any) -> Iterator[Any]:
    """A page whose context lets the test inject axe-core despite the pages' strict CSP."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert errors == [], f"page errors: {errors}"


def blocking_violations(page: Any, axe_source: str) -> list[str]:
    """The serious and critical axe-core violations of the page as it is now, one line per node."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source)
    result = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    return [
        f"{violation['id']} ({violation['impact']}): {node['target']} {node['failureSummary'][:160]}"
        for violation in result["violations"]
        if violation["impact"] in BLOCKING
        for node in violation["nodes"]
    ]


def audit(page: Any, axe_source: str, urls: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for url in urls:
        page.goto(url)
        page.wait_for_load_state("load")
        problems = blocking_violations(page, axe_source)
        if problems:
            found[url] = problems
    return found


def sign_in(page: Any, live_server: Any) -> None:
    email = live_server.create_admin()
    page.goto(f"{live_server.url}/console/login")
    page.fill("#f-email", email)
    page.fill("#f-password", PASSWORD)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(f"{live_server.url}/console")


def reward_event(member: str, kind: str) -> dict[str, object]:
    return {
        "id": f"{member}-{kind}-{uuid.uuid4().hex[:6]}",
        "member": member,
        "type": kind,
        "occurred_at": datetime.now(UTC).isoformat(),
        "properties": {},
    }


def test_portal_pages_have_no_serious_violations(live_server, audited, axe_source):
    member = f"m-axe-{uuid.uuid4().hex[:6]}"
    live_server.member(member, name="Giulia")
    audited.goto(live_server.portal_link(member))
    pages = [
        "/portal",
        "/portal/challenges",
        "/portal/badges",
        "/portal/leaderboards",
        "/portal/activity",
        "/portal/tier",
        "/portal/wallet",
        "/portal/offers",
        "/portal/notifications",
        "/portal/notifications/settings",
        "/portal/league",
        "/portal/rewards",
        "/portal/rewards/plant-a-tree/redeem",
        "/portal/invite",
        "/portal/account",
    ]
    for kind, body in (("apple", apple_settings()), ("google", google_settings())):  # the buttons are audited too
        assert live_server.api.put(f"/v1/wallet/{kind}", json=body).status_code in (200, 201)
    urls = [f"{live_server.url}{path}?lang={lang}" for lang in LANGS for path in pages]
    assert audit(audited, axe_source, urls) == {}


def test_console_pages_have_no_serious_violations(live_server, audited, axe_source):
    audited.goto(f"{live_server.url}/console/login")
    assert blocking_violations(audited, axe_source) == []
    sign_in(audited, live_server)
    member = f"m-axe-console-{uuid.uuid4().hex[:6]}"
    live_server.member(member, name="Marco")
    with webhook_receiver() as (url, _):
        endpoint = webhook_endpoint(live_server, url)
        assert live_server.api.post(f"/v1/webhooks/{endpoint}/test").status_code == 200  # a delivery log row
    pages = [
        "/console",
        "/console/campaigns",
        "/console/campaigns/new",
        "/console/badges",
        "/console/badges/new",
        "/console/leaderboards",
        "/console/members",
        f"/console/members/{member}",
        "/console/program",
        "/console/keys",
        "/console/webhooks",
        f"/console/webhooks/{endpoint}",
        "/console/widgets",
        "/console/rewards",
        "/console/rewards/new",
        "/console/rewards/voucher-5",
        "/console/redemptions",
        "/console/liability",
        "/console/enrollment",
        "/console/review",
        "/console/audit",
        "/console/segments",
        "/console/offers",
        "/console/tiers",
        "/console/notifications",
    ]
    pages += ["/join/demo", "/join/demo/sign-in", "/join/demo/widget"]
    urls = [f"{live_server.url}{path}?lang={lang}" for lang in LANGS for path in pages]
    assert audit(audited, axe_source, urls) == {}


def test_widgets_have_no_serious_violations(live_server, audited, axe_source):
    member = f"m-axe-widget-{uuid.uuid4().hex[:6]}"
    live_server.member(member, name="Sara")
    token = live_server.widget_token(member)
    base = f"{live_server.url}/widgets"
    urls = [
        url
        for lang in LANGS
        for url in (
            f"{base}/leaderboard/weekly-points?key={PUBLISHABLE_KEY}&lang={lang}",
            f"{base}/leaderboard/weekly-points?key={PUBLISHABLE_KEY}&lang={lang}&theme=dark&member={token}",
            f"{base}/badges?key={PUBLISHABLE_KEY}&lang={lang}&member={token}",
            f"{base}/badges?key={PUBLISHABLE_KEY}&lang={lang}&member={token}&theme=dark",
        )
    ]
    assert audit(audited, axe_source, urls) == {}


def test_skip_links_move_focus_to_the_content(live_server, page):
    member = f"m-skip-{uuid.uuid4().hex[:6]}"
    live_server.member(member, name="Luca")
    page.goto(live_server.portal_link(member))
    sign_in_page = page.context.new_page()
    sign_in(sign_in_page, live_server)
    for tab, url in ((page, f"{live_server.url}/portal"), (sign_in_page, f"{live_server.url}/console")):
        tab.goto(url)
        tab.keyboard.press("Tab")
        assert tab.evaluate("document.activeElement.className") == "skip-link"
        assert tab.locator(".skip-link").is_visible()  # shown when focused
        tab.keyboard.press("Enter")
        assert tab.evaluate("document.activeElement.id") == "main"
        tab.keyboard.press("Tab")  # the next stop is inside the content, not back in the header
        assert tab.evaluate("document.getElementById('main').contains(document.activeElement)")


def test_a_live_update_keeps_focus_and_announces_the_points(live_server, page):
    suffix = uuid.uuid4().hex[:6]
    member, kind = f"m-focus-{suffix}", f"focus_ping_{suffix}"
    live_server.add_to_program(
        campaigns=[{"key": f"focus-{suffix}", "title": "Focus campaign"}],
        challenges=[
            {
                "key": f"focus-{suffix}",
                "campaign": f"focus-{suffix}",
                "title": "Ping once",
                "rule": {"type": "count", "event_type": kind, "target": 1},
                "reward": {"points": 1390},
            },
            {
                "key": f"focus-more-{suffix}",
                "campaign": f"focus-{suffix}",
                "title": "Ping twice",
                "rule": {"type": "count", "event_type": kind, "target": 2},
                "reward": {"points": 60},
            },
        ],
    )
    live_server.member(member, name="Anna")
    page.goto(live_server.portal_link(member))
    page.locator("html[data-live=on]").wait_for()
    status = page.locator("#live-status")
    assert page.evaluate("document.getElementById('main').contains(document.getElementById('live-status'))") is False

    link = page.locator("main a[href='/portal/badges']").first
    link.focus()
    live_server.events(reward_event(member, kind))
    page.locator("[data-live=balance]", has_text="1,390").wait_for()
    page.wait_for_function("document.getElementById('live-status').textContent !== ''")
    assert status.inner_text() == "+1,390 points, balance 1,390"
    # The element under focus was replaced by its fresh copy, and the copy has the focus.
    assert page.evaluate("document.activeElement.getAttribute('href')") == "/portal/badges"
    assert page.evaluate("document.getElementById('main').contains(document.activeElement)")

    page.goto(f"{live_server.url}/portal?lang=it")
    page.locator("html[data-live=on]").wait_for()
    live_server.events(reward_event(member, kind))
    page.locator("[data-live=balance]", has_text="1.450").wait_for()
    page.wait_for_function("document.getElementById('live-status').textContent !== ''")
    assert status.inner_text() == "+60 punti, saldo 1.450"


def test_the_badge_widget_keeps_its_own_line_after_an_update(live_server, page):
    suffix = uuid.uuid4().hex[:6]
    member, kind, badge = f"m-shelf-{suffix}", f"shelf_ping_{suffix}", f"shelf-{suffix}"
    live_server.add_to_program(
        badges=[
            {"key": badge, "name": "Shelf one", "description": "One ping.", "rule": {"event_type": kind, "count": 1}},
            {
                "key": f"{badge}-b",
                "name": "Shelf two",
                "description": "Two pings.",
                "rule": {"event_type": kind, "count": 2},
            },
        ],
    )
    live_server.member(member, name="Paolo")
    token = live_server.widget_token(member)
    page.goto(f"{live_server.url}/widgets/badges?key={PUBLISHABLE_KEY}&member={token}")
    page.locator("body[data-live=on]").wait_for()
    before = page.locator("#locked-count").inner_text()
    assert "more to earn" in before
    live_server.events(reward_event(member, kind))
    page.locator(f"[data-row='{badge}']").wait_for()
    page.wait_for_function("document.getElementById('live-status').textContent !== ''")
    after = page.locator("#locked-count").inner_text()
    assert "more to earn" in after
    assert after != before  # one fewer to earn, and still there beside the status
    assert page.locator("#live-status").inner_text() == "Updated"


def test_the_api_keys_page_fits_a_320px_screen(live_server, chromium):
    context = chromium.new_context(viewport={"width": 320, "height": 640})
    try:
        tab = context.new_page()
        sign_in(tab, live_server)
        tab.goto(f"{live_server.url}/console/keys")
        assert tab.evaluate("document.documentElement.scrollWidth") <= 320  # no sideways scroll
        card = tab.locator("section[aria-labelledby=keys-list]").bounding_box()
        revoke = tab.locator("section[aria-labelledby=keys-list] button").first.bounding_box()
        assert card is not None and revoke is not None
        assert revoke["x"] >= card["x"] and revoke["x"] + revoke["width"] <= card["x"] + card["width"]
    finally:
        context.close()


def test_landing_and_export_pages_have_no_serious_violations(live_server, audited, axe_source):
    audited.goto(f"{live_server.url}/console/login")
    sign_in(audited, live_server)
    member = f"m-axe-export-{uuid.uuid4().hex[:6]}"
    live_server.member(member, name="Lucia")
    urls = [f"{live_server.url}/?lang={lang}" for lang in LANGS]
    urls += [f"{live_server.url}/console/member-export/{member}?format=html&lang={lang}" for lang in LANGS]
    assert audit(audited, axe_source, urls) == {}

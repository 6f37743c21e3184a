"""Brand console over HTTP: sign-in and sessions, CSRF, tenant sealing, the campaign editor's inline errors,
keys, webhooks, widget settings, member care, charts and the program page, and escaping everywhere."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from engine.admins import create_admin
from engine.orm import BrandRow
from tests.helpers import event, make_brand

PASSWORD = "correct horse battery"
XSS = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
GOOD_CAMPAIGN = {
    "c_title": "Autumn reviews",
    "c_key": "autumn-reviews",
    "c_starts_at": "2026-11-01T00:00",
    "c_ends_at": "2026-12-01T00:00",
    "c_status": "live",
    "ch_title": "Write 3 reviews with 4+ stars",
    "ch_key": "autumn-3-reviews",
    "ch_type": "count",
    "ch_event_type": "review",
    "ch_target": "3",
    "ch_filter": "{field: properties.stars, gte: 4}",
    "ch_recurrence": "none",
    "ch_reward_points": "300",
}


@pytest.fixture
def console(client):
    """The app on the current backend (the shared ``client`` fixture)."""
    return client


@pytest.fixture
async def admin(db, brand, clock):
    """An admin of the test brand; returns the email."""
    email = f"admin-{uuid.uuid4().hex[:8]}@brand.example"
    await create_admin(db, brand_id=brand.brand.id, email=email, password=PASSWORD, name="Ada", now=clock.now())
    return email


def csrf(client) -> str:
    return str(client.cookies.get("ql_csrf"))


async def sign_in(client, email, password=PASSWORD, *, next_path="/console"):
    await client.get("/console/login")
    return await client.post(
        "/console/login",
        data={"email": email, "password": password, "next": next_path, "_csrf_token": csrf(client)},
        follow_redirects=False,
    )


async def post_form(client, path, data):
    return await client.post(path, data={**data, "_csrf_token": csrf(client)}, follow_redirects=False)


async def test_sign_in_sets_a_safe_session_and_sign_out_ends_it(console, admin):
    signed_out = await console.get("/console/campaigns", follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/console/login?next=/console/campaigns"
    wrong = await sign_in(console, admin, "not the password")
    assert wrong.status_code == 401
    assert "Wrong email or password" in wrong.text
    ok = await sign_in(console, admin)
    assert ok.status_code == 303
    assert ok.headers["location"] == "/console"
    cookie = next(v for k, v in ok.headers.multi_items() if k == "set-cookie" and v.startswith("ql_console=")).lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/console" in cookie
    session = console.cookies.get("ql_console")
    dashboard = await console.get("/console")
    assert dashboard.status_code == 200
    assert "frame-ancestors 'none'" in dashboard.headers["content-security-policy"]
    assert "<svg" in dashboard.text
    out = await post_form(console, "/console/logout", {})
    assert out.status_code == 303
    console.cookies.set("ql_console", session, path="/console")
    assert (await console.get("/console", follow_redirects=False)).status_code == 303  # the old token is dead


async def test_posts_without_the_csrf_token_are_refused(console, admin):
    await console.get("/console/login")
    no_token = await console.post("/console/login", data={"email": admin, "password": PASSWORD})
    assert no_token.status_code == 403
    await sign_in(console, admin)
    forged = await console.post(
        "/console/keys", data={"kind": "secret", "label": "x", "_csrf_token": "forged"}, follow_redirects=False
    )
    assert forged.status_code == 403
    # The key-authenticated API is exempt: it carries no cookies.
    assert (await console.get("/health")).status_code == 200


async def test_redirects_stay_on_the_console_and_guessing_is_throttled(console, admin):
    escaped = await sign_in(console, admin, next_path="//evil.example/phish")
    assert escaped.headers["location"] == "/console"
    outsider = f"guess-{uuid.uuid4().hex[:6]}@brand.example"
    statuses = [(await sign_in(console, outsider, "nope-nope-nope")).status_code for _ in range(9)]
    assert statuses[:8] == [401] * 8
    assert statuses[8] == 429


async def test_an_admin_sees_only_their_own_brand(console, admin, db, clock):
    other = await make_brand(db, clock)
    await console.post(
        "/v1/members", json={"external_id": "stranger", "display_name": "Stranger"}, headers=other.headers
    )
    await sign_in(console, admin)
    found = await console.get("/console/members/stranger")
    assert found.status_code == 404
    keys = await console.get("/console/keys")
    assert other.secret[:14] not in keys.text


async def test_a_campaign_with_a_mistake_shows_the_error_inline_then_saves_once_fixed(console, admin, brand):
    await sign_in(console, admin)
    form = await console.get("/console/campaigns/new")
    assert 'id="f-c_title"' in form.text
    mistaken = await post_form(console, "/console/campaigns", {**GOOD_CAMPAIGN, "ch_target": "three"})
    assert mistaken.status_code == 422
    error = re.search(r'<span class="error" id="e-ch_target" role="alert">(.*?)</span>', mistaken.text, re.S)
    assert error is not None
    assert "Enter a number" in error.group(1)
    assert 'aria-invalid="true"' in mistaken.text
    assert 'value="Autumn reviews"' in mistaken.text  # what was typed is kept
    assert "Autumn reviews" not in (await console.get("/console/campaigns")).text
    window = await post_form(console, "/console/campaigns", {**GOOD_CAMPAIGN, "c_ends_at": "2026-10-01T00:00"})
    assert 'id="e-c_ends_at"' in window.text
    bad_filter = await post_form(
        console, "/console/campaigns", {**GOOD_CAMPAIGN, "ch_filter": "{field: properties.stars, gte: [4"}
    )
    assert 'id="e-ch_filter"' in bad_filter.text
    saved = await post_form(console, "/console/campaigns", GOOD_CAMPAIGN)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/console/campaigns?ok=created"
    listing = await console.get("/console/campaigns")
    assert "Autumn reviews" in listing.text
    assert "Write 3 reviews with 4+ stars" in listing.text
    again = await post_form(console, "/console/campaigns", GOOD_CAMPAIGN)
    assert 'id="e-c_key"' in again.text
    program = await console.get("/console/program")
    assert "autumn-3-reviews" in program.text
    for path in (
        "/console/campaigns/autumn-reviews",
        "/console/campaigns/autumn-reviews/challenges/new",
        "/console/challenges/autumn-3-reviews",
        "/console/badges/new",
    ):
        page = await console.get(path)
        assert page.status_code == 200, (path, page.text[-500:])
        assert "← " in page.text  # the way back is always there
    edited = await post_form(
        console, "/console/challenges/autumn-3-reviews", {**GOOD_CAMPAIGN, "ch_target": "5", "ch_title": "Five reviews"}
    )
    assert edited.status_code == 303
    assert "Five reviews" in (await console.get("/console/campaigns/autumn-reviews")).text


async def test_the_program_page_checks_applies_and_simulates(console, admin, brand):
    await console.post("/v1/events", json=event("e1", "m1", "visit", "2026-11-19T09:00:00Z"), headers=brand.headers)
    await sign_in(console, admin)
    document = (
        "campaigns:\n- key: nov\n  title: November\nchallenges:\n- key: one-visit\n  campaign: nov\n  title: One visit\n"
        "  rule: {type: count, event_type: visit, target: 1}\n  reward: {points: 5}\n"
    )
    broken = await post_form(
        console, "/console/program", {"document": document.replace("target: 1", "target: 0"), "action": "check"}
    )
    assert broken.status_code == 422
    assert "$.challenges[0].rule.target" in broken.text
    check = await post_form(console, "/console/program", {"document": document, "action": "check"})
    assert "challenge one-visit: created" in check.text
    simulated = await post_form(
        console,
        "/console/program",
        {"document": document, "action": "simulate", "since": "2026-11-01", "until": "2026-11-20"},
    )
    assert 'id="simulation"' in simulated.text
    assert "One visit" in simulated.text
    applied = await post_form(console, "/console/program", {"document": document, "action": "apply"})
    assert applied.headers["location"] == "/console/program?ok=applied"


async def test_keys_webhooks_and_widget_settings(console, admin, brand, db):
    await sign_in(console, admin)
    issued = await post_form(console, "/console/keys", {"kind": "publishable", "label": "Shop"})
    key = re.search(r'id="issued-key">(pk_live_[^<]+)<', issued.text)
    assert key is not None
    prefix = key.group(1)[:14]
    revoked = await post_form(console, f"/console/keys/{prefix}/revoke", {})
    assert revoked.status_code == 303
    assert (
        await console.get("/v1/leaderboards", headers={"Authorization": f"Bearer {key.group(1)}"})
    ).status_code == 401
    hook = await post_form(
        console, "/console/webhooks", {"url": "https://crm.example/hooks", "topics": "badge.awarded"}
    )
    assert re.search(r'id="webhook-secret">whsec_', hook.text)
    bad_hook = await post_form(console, "/console/webhooks", {"url": "ftp://nope"})
    assert 'id="e-url"' in bad_hook.text
    bad = await post_form(console, "/console/widgets", {"origins": "https://shop.example/path", "accent": "#5b3df5"})
    assert 'id="e-origins"' in bad.text
    ok = await post_form(
        console, "/console/widgets", {"origins": "https://shop.example\nhttps://*.brand.example", "accent": "#FF5A36"}
    )
    assert ok.status_code == 303
    async with db.read() as session:
        stored = await session.scalar(select(BrandRow.settings).where(BrandRow.id == brand.brand.id))
    assert stored["allowed_origins"] == ["https://shop.example", "https://*.brand.example"]
    assert stored["accent"] == "#ff5a36"
    page = await console.get("/console/widgets")
    assert "--accent: #ff5a36" in page.text


async def test_member_care_adjusts_points_and_grants_and_revokes_badges(console, admin, brand):
    await console.put("/v1/badges/helper", json={"key": "helper", "name": "Helper"}, headers=brand.headers)
    await console.post(
        "/v1/members", json={"external_id": "m-x", "display_name": XSS, "locale": "it"}, headers=brand.headers
    )
    await sign_in(console, admin)
    invalid = await post_form(console, "/console/members/m-x/points", {"points": "0", "reason": ""})
    assert invalid.status_code == 422
    assert 'id="e-points"' in invalid.text
    assert 'id="e-reason"' in invalid.text
    # No overdraft (issue 11): a debit needs points to take from, and one beyond them is refused.
    await console.post(
        "/v1/members/m-x/points/adjustments", json={"points": 100, "reason": "welcome"}, headers=brand.headers
    )
    overdraft = await post_form(console, "/console/members/m-x/points", {"points": "-101", "reason": "too much"})
    assert overdraft.status_code == 409
    adjusted = await post_form(console, "/console/members/m-x/points", {"points": "-25", "reason": "goodwill fix"})
    assert adjusted.status_code == 303
    points = await console.get("/v1/members/m-x/points", headers=brand.headers)
    assert points.json()["balance"] == 75
    assert "goodwill fix" in points.json()["entries"][0]["reason"]
    granted = await post_form(console, "/console/members/m-x/badges/grant", {"badge": "helper", "grant_reason": "kind"})
    assert granted.status_code == 303, re.findall(r"role=\"alert\">(.*?)</span>", granted.text, re.S)
    page = await console.get("/console/members/m-x")
    assert "/console/members/m-x/badges/helper/revoke" in page.text
    assert ESCAPED in page.text
    assert XSS not in page.text
    revoked = await post_form(console, "/console/members/m-x/badges/helper/revoke", {"reason": "mistake"})
    assert revoked.status_code == 303
    shelf = await console.get("/v1/members/m-x/badges", headers=brand.headers)
    assert shelf.json()["earned"] == []
    found = await console.get("/console/members?q=m-")
    assert ESCAPED in found.text
    assert XSS not in found.text
    link = await post_form(console, "/console/members/m-x/portal-link", {})
    assert 'id="support-link"' in link.text


async def test_badges_manager_previews_art_and_reports_mistakes_inline(console, admin):
    await sign_in(console, admin)
    preview = await post_form(
        console,
        "/console/badges",
        {"key": "night-owl", "name": "Night owl", "icon": "star", "action": "preview", "active": "on"},
    )
    assert preview.status_code == 200
    assert 'src="data:image/svg+xml;base64,' in preview.text
    mistaken = await post_form(
        console,
        "/console/badges",
        {
            "key": "night-owl",
            "name": "Night owl",
            "rule_event_type": "visit",
            "levels": "bronze 5\nsilver 2",
            "active": "on",
        },
    )
    assert mistaken.status_code == 422
    assert 'id="e-levels"' in mistaken.text
    saved = await post_form(
        console,
        "/console/badges",
        {
            "key": "night-owl",
            "name": XSS,
            "rule_event_type": "visit",
            "levels": "bronze 1\nsilver 5 20",
            "active": "on",
        },
    )
    assert saved.status_code == 303
    listing = await console.get("/console/badges")
    assert "/art/" in listing.text
    assert ESCAPED in listing.text
    assert XSS not in listing.text


async def test_leaderboards_pages_and_widget_preview(console, admin, brand):
    board = {"key": "weekly", "title": "Points this week", "metric": {"kind": "points"}, "period": "weekly"}
    applied = await console.put(
        "/v1/program",
        json={"leaderboards": [board], "earning_rules": [{"key": "visit", "event_type": "visit", "points": 10}]},
        headers=brand.headers,
    )
    assert applied.status_code == 200, applied.text
    await console.post("/v1/members", json={"external_id": "m-b", "display_name": XSS}, headers=brand.headers)
    await console.post("/v1/events", json=event("b1", "m-b", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers)
    await sign_in(console, admin)
    overview = await console.get("/console/leaderboards")
    assert "Points this week" in overview.text
    detail = await console.get("/console/leaderboards/weekly")
    assert detail.status_code == 200
    assert ESCAPED in detail.text
    assert XSS not in detail.text
    assert "/console/members/m-b" in detail.text
    preview = await console.get("/console/widgets/preview/weekly?theme=dark")
    assert preview.status_code == 200
    assert "frame-ancestors 'self'" in preview.headers["content-security-policy"]
    assert ESCAPED in preview.text
    assert 'id="live-state"' not in preview.text
    widgets = await console.get("/console/widgets")
    assert 'src="/console/widgets/preview/weekly?theme=light"' in widgets.text


def test_cli_creates_an_admin_and_prints_a_member_link(database_url, clock, monkeypatch):
    import asyncio

    import click
    from click.testing import CliRunner

    from engine.admins import authenticate
    from engine.db import Database, create_engine
    from engine.members import MemberIn, upsert_member
    from web.commands.pages import register

    async def prepare():
        db = Database(create_engine(database_url))
        try:
            keys = await make_brand(db, clock)
            await upsert_member(db, brand_id=keys.brand.id, data=MemberIn(external_id="m-cli"), now=clock.now())
            return keys
        finally:
            await db.dispose()

    keys = asyncio.run(prepare())
    monkeypatch.setenv("QUESTLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("QUESTLINE_PUBLIC_URL", "https://loyalty.example")
    group = click.Group()
    register(group)
    email = f"cli-{uuid.uuid4().hex[:6]}@brand.example"
    created = CliRunner().invoke(
        group, ["admin", "create", "--brand", keys.brand.slug, "--email", email], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert created.exit_code == 0, created.output
    assert "/console/login" in created.output
    short = CliRunner().invoke(
        group, ["admin", "create", "--brand", keys.brand.slug, "--email", "x" + email], input="short\nshort\n"
    )
    assert short.exit_code == 1
    assert "10 characters" in short.output
    link = CliRunner().invoke(group, ["member-link", "--brand", keys.brand.slug, "--member", "m-cli", "--hours", "2"])
    assert link.exit_code == 0, link.output
    assert link.output.startswith("https://loyalty.example/portal/enter/")

    async def check():
        db = Database(create_engine(database_url))
        try:
            return await authenticate(db, email=email, password=PASSWORD, now=clock.now())
        finally:
            await db.dispose()

    assert asyncio.run(check()).brand_id == keys.brand.id


async def test_every_dashboard_chart_has_a_table_of_its_numbers(console, admin, brand):
    suffix = uuid.uuid4().hex[:6]
    program = {
        "campaigns": [{"key": f"tables-{suffix}", "title": "Tables"}],
        "challenges": [
            {
                "key": f"first-visit-{suffix}",
                "campaign": f"tables-{suffix}",
                "title": f"First visit {suffix}",
                "rule": {"type": "count", "event_type": "visit", "target": 1},
            }
        ],
        "badges": [
            {"key": f"regular-{suffix}", "name": f"Regular {suffix}", "rule": {"event_type": "visit", "count": 1}}
        ],
    }
    assert (await console.put("/v1/program", json=program, headers=brand.headers)).status_code == 200
    sent = await console.post(
        "/v1/events", json=event(f"t-{suffix}", "m-tables", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers
    )
    assert sent.status_code == 200, sent.text
    await sign_in(console, admin)
    page = (await console.get("/console")).text
    sections = dict(re.findall(r'<section class="card" aria-labelledby="(h-[a-z]+)">(.*?)</section>', page, re.S))
    assert set(sections) == {"h-events", "h-active", "h-points", "h-completions", "h-rarity"}
    for key, section in sections.items():  # each chart is followed by a table a screen reader can read
        assert "<figure" in section or "<svg" in section, key
        assert "Show the numbers" in section and "<table" in section and '<th scope="col"' in section, key
    assert f'<th scope="row">First visit {suffix}</th><td class="num">1</td>' in sections["h-completions"]
    assert f'<th scope="row">Regular {suffix}</th><td class="num">100%</td>' in sections["h-rarity"]

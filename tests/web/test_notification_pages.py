"""Notification pages: the portal feed (unread badge, mark read), email choices, and the console's controls
and template previews (both backends)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from engine.orm import BrandRow
from notifications import preferences
from tests.web.test_console import admin, post_form, sign_in  # noqa: F401  (fixture)
from tests.web.test_pages import enrol
from tests.web.test_selfservice import csrf, enter


async def grant(client, brand, badge: str, who: str = "m1") -> None:
    await client.put(f"/v1/badges/{badge}", json={"key": badge, "name": badge.title()}, headers=brand.headers)
    granted = await client.post(f"/v1/members/{who}/badges/{badge}/grant", json={"reason": "x"}, headers=brand.headers)
    assert granted.status_code in (200, 201), granted.text


async def test_portal_feed_badge_mark_read_and_email_choices(client, brand, db):
    await enter(client, brand)
    home = await client.get("/portal")
    assert 'data-live="unread" data-value="0"' in home.text and "badge-count" not in home.text
    await grant(client, brand, "vip")
    await grant(client, brand, "star")
    await _run(client, client.app.state.services.notifications.derive)
    home = await client.get("/portal")
    assert 'data-value="2"' in home.text and 'class="badge-count">2' in home.text
    page = await client.get("/portal/notifications")
    assert page.status_code == 200
    assert "You earned the badge Vip." in page.text and "You earned the badge Star." in page.text
    first = page.text.split('name="id" value="')[1].split('"')[0]
    one = await client.post(
        "/portal/notifications/read", data={"id": first, "_csrf_token": csrf(client)}, follow_redirects=False
    )
    assert one.status_code == 303
    assert 'data-value="1"' in (await client.get("/portal/notifications")).text
    bad = await client.post("/portal/notifications/read", data={"id": "x", "_csrf_token": csrf(client)})
    assert bad.status_code == 422
    everything = await client.post(
        "/portal/notifications/read", data={"all": "yes", "_csrf_token": csrf(client)}, follow_redirects=False
    )
    assert everything.status_code == 303
    assert 'data-value="0"' in (await client.get("/portal/notifications")).text

    settings = await client.get("/portal/notifications/settings")
    assert settings.status_code == 200 and 'name="email_badge_earned"' in settings.text
    form = {"email_reward_redeemed": "yes", "mode": "digest", "_csrf_token": csrf(client)}
    saved = await client.post("/portal/notifications/settings", data=form, follow_redirects=False)
    assert saved.headers["location"] == "/portal/notifications/settings?saved=yes"
    async with db.read() as session:
        member_id = (await client.get("/v1/members/m1", headers=brand.headers)).json()
        chosen = await preferences.choices_of(session, member_ids=[await _id(session, brand)])
    [choices] = chosen.values()
    assert choices.digest is True and "badge_earned" in choices.email_off and "reward_redeemed" not in choices.email_off
    assert member_id["external_id"] == "m1"
    refused = await client.post("/portal/notifications/settings", data={"mode": "hourly", "_csrf_token": csrf(client)})
    assert refused.status_code == 422


async def _id(session, brand) -> int:
    from engine.orm import MemberRow

    return int(
        await session.scalar(
            select(MemberRow.id).where(MemberRow.brand_id == brand.brand.id, MemberRow.external_id == "m1")
        )
    )


async def _run(client, fn):
    """Run ``fn`` on the app's own event loop (its connections live there)."""
    return await asyncio.to_thread(client.blocking_portal.call, fn)


async def test_console_controls_and_previews(client, brand, db, admin):  # noqa: F811
    assert (await sign_in(client, admin)).status_code == 303
    page = await client.get("/console/notifications")
    assert page.status_code == 200
    assert 'data-preview="badge_earned"' in page.text and "You earned the badge First purchase." in page.text
    assert 'data-preview="digest"' in page.text
    italian = await client.get("/console/notifications?lang=it")
    assert "Hai ottenuto il badge Primo acquisto." in italian.text
    form = {
        "kind_badge_earned": "yes",
        "email": "yes",
        "quiet_start": "22:00",
        "quiet_end": "07:30",
        "digest_hour": "8",
    }
    saved = await post_form(client, "/console/notifications/controls", form)
    assert saved.status_code == 303
    async with db.read() as session:
        settings = (await session.get(BrandRow, brand.brand.id)).settings
    assert settings["notifications"] == {
        "enabled": ["badge_earned"], "email": True, "quiet_start": "22:00", "quiet_end": "07:30", "digest_hour": 8,
    }  # fmt: skip
    half = await post_form(client, "/console/notifications/controls", {"quiet_start": "22:00", "digest_hour": "8"})
    assert half.status_code == 422  # quiet hours need both ends; nothing changed
    async with db.read() as session:
        assert (await session.get(BrandRow, brand.brand.id, populate_existing=True)).settings["notifications"][
            "quiet_end"
        ] == "07:30"
    custom = {
        "kind": "badge_earned",
        "locale": "en",
        "subject": "Hooray {{ member }}",
        "body": "Badge: {{ data.badge }}!",
    }
    assert (await post_form(client, "/console/notifications/templates", custom)).status_code == 303
    page = await client.get("/console/notifications")
    assert "Hooray Ada" in page.text and "Badge: first-purchase!" in page.text
    broken = {**custom, "body": "{% if %}"}
    assert (await post_form(client, "/console/notifications/templates", broken)).status_code == 422
    sandboxed = {**custom, "body": "{{ ''.__class__.__mro__ }}"}
    assert (await post_form(client, "/console/notifications/templates", sandboxed)).status_code == 422
    restored = await post_form(client, "/console/notifications/templates", {**custom, "body": ""})
    assert restored.status_code == 303
    assert "You earned the badge First purchase." in (await client.get("/console/notifications")).text


async def test_feed_page_needs_a_session(client, brand):
    await enrol(client, brand, "m2", name="X", locale="en")
    assert (await client.get("/portal/notifications")).status_code == 401

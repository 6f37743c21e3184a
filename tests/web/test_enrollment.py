"""Self-enrolment with double opt-in, magic-link sign-in, member.enrolled rewards (both backends, real SMTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from engine.orm import MemberRow
from enrollment.orm import ConsentRow
from tests.conftest import public_resolver
from tests.smtp import Inbox, start_smtp

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, str]]:
    """A real SMTP server on loopback for this module."""
    controller, inbox, url = start_smtp()
    yield inbox, url
    controller.stop()


@pytest.fixture
async def app(backend, settings, redis, clock, smtp) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app sending its mail to the test SMTP server."""
    from web.app import create_app

    configured = msgspec.structs.replace(settings, smtp_url=smtp[1], mail_from="Club <club@example.com>")
    application = create_app(
        configured,
        clock=clock,
        redis=redis if backend.endswith("fakeredis") else None,
        deliver_webhooks=False,
        resolver=public_resolver,
    )
    async with AsyncTestClient(app=application) as client:
        yield client


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def join(client, slug: str, email: str, *, name: str = "Giulia", ref: str = "", marketing: bool = True):
    page = await client.get(f"/join/{slug}" + (f"?ref={ref}" if ref else ""))
    assert page.status_code == 200
    form = {
        "email": email,
        "name": name,
        "terms": "yes",
        "ref": ref,
        "via": "",
        "_csrf_token": client.cookies.get("ql_csrf"),
    }
    if marketing:
        form["marketing"] = "yes"
    return await client.post(f"/join/{slug}", data=form)


async def welcome_rule(client, brand, points: int = 50) -> None:
    response = await client.put(
        "/v1/earning-rules/welcome",
        json={"key": "welcome", "event_type": "member.enrolled", "points": points},
        headers=brand.headers,
    )
    assert response.status_code in (200, 201), response.text


async def test_join_confirm_once_and_welcome_bonus_once(app, brand, smtp, db):
    inbox, _ = smtp
    await welcome_rule(app, brand)
    email = f"giulia+{brand.brand.slug}@example.com"
    sent = await join(app, brand.brand.slug, "  " + email.upper() + " ")
    assert sent.status_code == 200 and "Check your inbox" in sent.text
    [message] = inbox.wait_for(email)
    assert message["Subject"] == f"Confirm your email for {brand.brand.name}"
    assert message["From"] == "Club <club@example.com>"
    [link] = inbox.links(email)
    assert f"/join/{brand.brand.slug}/confirm/" in link
    async with db.read() as session:  # nothing exists before the confirmation
        assert await session.scalar(select(MemberRow).where(MemberRow.email == email)) is None
    confirmed = await app.get(path_of(link), follow_redirects=False)
    assert confirmed.status_code == 303 and confirmed.headers["location"].startswith("/portal/enter/")
    entered = await app.get(confirmed.headers["location"], follow_redirects=False)
    assert entered.status_code == 303
    home = await app.get("/portal")
    assert home.status_code == 200 and "Giulia" in home.text
    async with db.read() as session:
        member = await session.scalar(
            select(MemberRow).where(MemberRow.brand_id == brand.brand.id, MemberRow.email == email)
        )
        assert member is not None and member.joined_via == "web"
        consents = (await session.scalars(select(ConsentRow).where(ConsentRow.member_id == member.id))).all()
    assert {(c.kind, c.version, c.granted) for c in consents} == {
        ("terms", "terms-2026-12", True),
        ("marketing", "marketing-2026-12", True),
    }
    points = (await app.get(f"/v1/members/{member.external_id}/points", headers=brand.headers)).json()
    assert points["balance"] == 50
    # the link is single use: a replay enrols nobody and pays nothing
    replay = await app.get(path_of(link), follow_redirects=False)
    assert replay.status_code == 410
    # the enrolled event is idempotent: the welcome bonus is paid once even if the event is sent again
    again = await app.post(
        "/v1/events",
        json={"id": f"member.enrolled:{member.external_id}", "member": member.external_id, "type": "member.enrolled",
              "occurred_at": "2026-11-20T10:00:00Z"},
        headers=brand.headers,
    )  # fmt: skip
    assert again.json()["duplicate"] is True
    assert (await app.get(f"/v1/members/{member.external_id}/points", headers=brand.headers)).json()["balance"] == 50


async def test_confirmation_link_expires(app, brand, smtp, clock):
    inbox, _ = smtp
    email = f"late+{brand.brand.slug}@example.com"
    await join(app, brand.brand.slug, email)
    [link] = inbox.links(email) or [None]
    inbox.wait_for(email)
    [link] = inbox.links(email)
    clock.advance(timedelta(hours=25))
    assert (await app.get(path_of(link), follow_redirects=False)).status_code == 410


async def test_bad_email_and_missing_terms_are_refused(app, brand):
    await app.get(f"/join/{brand.brand.slug}")
    token = app.cookies.get("ql_csrf")
    bad = await app.post(f"/join/{brand.brand.slug}", data={"email": "nope", "_csrf_token": token})
    assert bad.status_code == 400 and "valid email" in bad.text
    no_terms = await app.post(f"/join/{brand.brand.slug}", data={"email": "a@example.com", "_csrf_token": token})
    assert no_terms.status_code == 400


async def confirm(app, inbox, email, slug) -> str:
    inbox.wait_for(email)
    link = [u for u in inbox.links(email) if "/confirm/" in u][-1]
    confirmed = await app.get(path_of(link), follow_redirects=False)
    assert confirmed.status_code == 303
    return confirmed.headers["location"]


async def test_magic_link_single_use_expiry_and_rate_limit(app, brand, smtp, clock):
    inbox, _ = smtp
    slug = brand.brand.slug
    email = f"marco+{slug}@example.com"
    await join(app, slug, email, name="Marco")
    await confirm(app, inbox, email, slug)
    token = app.cookies.get("ql_csrf")
    asked = await app.post(f"/join/{slug}/sign-in", data={"email": email, "_csrf_token": token})
    assert asked.status_code == 200
    messages = inbox.wait_for(email, count=2)
    assert messages[-1]["Subject"] == f"Your sign-in link for {brand.brand.name}"
    magic = [u for u in inbox.links(email) if "/portal/enter/" in u][-1]
    first = await app.get(path_of(magic), follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/portal"
    assert (await app.get(path_of(magic), follow_redirects=False)).status_code == 401  # replay refused
    # expiry: a second link is dead after 15 minutes
    await app.post(f"/join/{slug}/sign-in", data={"email": email, "_csrf_token": token})
    inbox.wait_for(email, count=3)
    late = [u for u in inbox.links(email) if "/portal/enter/" in u][-1]
    clock.advance(timedelta(minutes=16))
    assert (await app.get(path_of(late), follow_redirects=False)).status_code == 401
    # an unknown email gets the same answer and no mail
    stranger = f"nobody+{slug}@example.com"
    unknown = await app.post(f"/join/{slug}/sign-in", data={"email": stranger, "_csrf_token": token})
    assert unknown.status_code == 200 and inbox.wait_for(stranger, timeout=0.3) == []
    # rate limit per email: 5 links in the window
    statuses = [
        (await app.post(f"/join/{slug}/sign-in", data={"email": email, "_csrf_token": token})).status_code
        for _ in range(4)
    ]
    assert statuses[-1] == 429 and 200 in statuses


async def test_rate_limit_per_client_address(app, brand):
    slug = brand.brand.slug
    await app.get(f"/join/{slug}")
    token = app.cookies.get("ql_csrf")
    codes = [
        (await app.post(f"/join/{slug}/sign-in", data={"email": f"u{i}@example.com", "_csrf_token": token})).status_code
        for i in range(21)
    ]
    assert codes[:20] == [200] * 20 and codes[20] == 429


async def test_known_email_joining_again_gets_a_sign_in_link(app, brand, smtp):
    inbox, _ = smtp
    slug = brand.brand.slug
    email = f"twice+{slug}@example.com"
    await join(app, slug, email)
    await confirm(app, inbox, email, slug)
    await join(app, slug, email)
    messages = inbox.wait_for(email, count=2)
    assert messages[-1]["Subject"].startswith("Your sign-in link")


async def test_qr_code_of_the_join_url(app, brand):
    svg = await app.get(f"/join/{brand.brand.slug}/qr.svg?via=store-12")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    png = await app.get(f"/join/{brand.brand.slug}/qr.png")
    assert png.content.startswith(b"\x89PNG")
    assert (await app.get(f"/join/{brand.brand.slug}/qr.svg?via=<x>")).status_code == 422


async def test_join_widget_is_frameable_by_allowed_origins_only(app, brand):
    widget = await app.get(f"/join/{brand.brand.slug}/widget")
    assert widget.status_code == 200
    assert "frame-ancestors 'self'" in widget.headers["content-security-policy"]
    assert "x-frame-options" not in widget.headers
    assert f"/join/{brand.brand.slug}?via=widget" in widget.text
    page = await app.get(f"/join/{brand.brand.slug}")
    assert page.headers["x-frame-options"] == "DENY"


async def test_console_enrollment_page_reviews_and_erases(app, brand, db, clock):
    from engine.admins import create_admin
    from tests.web.test_console import PASSWORD, post_form, sign_in
    from tests.web.test_referrals import POLICY, buy, friend, setup

    await create_admin(
        db, brand_id=brand.brand.id, email="ada@brand.example", password=PASSWORD, name="Ada", now=clock.now()
    )
    code = await setup(app, brand, {**POLICY, "monthly_cap": 0})
    bea, _ = await friend(db, clock, brand, code, "bea@example.com")
    await buy(app, brand, "b1", bea, 30)
    assert (await sign_in(app, "ada@brand.example")).status_code == 303
    page = await app.get("/console/enrollment?via=store-7")
    assert page.status_code == 200
    assert f"/join/{brand.brand.slug}/qr.svg?via=store-7" in page.text
    assert 'id="referral-funnel-t"' in page.text and 'id="held-table"' in page.text
    held = (await app.get("/v1/referrals/held", headers=brand.headers)).json()
    approved = await post_form(app, f"/console/enrollment/referrals/{held[0]['id']}/approve", {})
    assert approved.status_code == 303
    await post_form(app, f"/console/enrollment/referrals/{held[0]['id']}/approve", {})  # a second click pays nothing
    assert (await app.get("/v1/members/anna/points", headers=brand.headers)).json()["balance"] == 200
    async with db.write() as session:
        from enrollment import service as enrollment_service

        member = await enrollment_service.member_by_email(session, brand_id=brand.brand.id, email="bea@example.com")
        assert member is not None
        await enrollment_service.request_erasure(
            session, brand_id=brand.brand.id, member_id=member[0], external_id=member[1], now=clock.now()
        )
    listed = await app.get("/console/enrollment")
    assert bea in listed.text
    [pending] = (await app.get("/v1/erasure-requests", headers=brand.headers)).json()
    assert (await post_form(app, f"/console/enrollment/erasures/{pending['id']}", {})).status_code == 303
    assert (await app.get(f"/v1/members/{bea}", headers=brand.headers)).status_code == 404
    async with db.read() as session:
        assert await session.scalar(select(MemberRow.email).where(MemberRow.email == "bea@example.com")) is None

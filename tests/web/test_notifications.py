"""Notifications on both backends: the feed for each kind, unread and read, live announcements, and email
through a real SMTP server on loopback (headers, one-click unsubscribe, retries, digest, quiet hours)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from engine import member_locks, settlement
from engine.keys import member_channel
from engine.mail import SmtpSender
from engine.metrics import JOB_RUNS
from engine.orm import MemberRow
from notifications import feed as feed_rows
from notifications import mailing, preferences
from notifications.models import BrandControls, MemberChoices
from notifications.orm import NotificationRow
from tests.conftest import public_resolver
from tests.helpers import event
from tests.smtp import Inbox, free_port, start_smtp
from web.notify_jobs import NotificationsWorker
from web.notify_mail import TemplateRenderer

pytestmark = pytest.mark.timeout(120)
PUBLIC = "https://club.example.com"

PROGRAM = {
    "points": {"expiry": {"kind": "rolling", "months": 1}, "notice_days": [7]},
    "earning_rules": [{"key": "visit", "event_type": "visit", "points": 10}],
    "campaigns": [{"key": "autumn", "title": "Autumn", "starts_at": "2026-10-01", "ends_at": "2026-12-31"}],
    "challenges": [
        {
            "key": "first-visit", "campaign": "autumn", "title": "First visit",
            "rule": {"type": "count", "event_type": "visit", "target": 1},
            "reward": {"points": 5},
        }
    ],
    "tiers": {
        "qualification": {"metric": {"kind": "event_count", "event_types": ["visit"]}},
        "levels": [{"key": "regular", "threshold": 1}, {"key": "fan", "threshold": 10}],
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, str]]:
    controller, inbox, url = start_smtp()
    yield inbox, url
    controller.stop()


@pytest.fixture
async def app(backend, settings, redis, clock) -> AsyncIterator[AsyncTestClient[Any]]:
    from web.app import create_app

    configured = msgspec.structs.replace(settings, public_url=PUBLIC)
    application = create_app(
        configured, clock=clock, redis=redis if backend.endswith("fakeredis") else None,
        deliver_webhooks=False, resolver=public_resolver,
    )  # fmt: skip
    async with AsyncTestClient(app=application) as client:
        yield client


def own_client(redis):
    """A client for the test's loop: on fakeredis a second client of the same server (the app uses the fixture's)."""
    server = redis.connection_pool.connection_kwargs.get("server")
    if server is None:
        return redis  # real Redis: the app opened its own client
    import fakeredis

    return fakeredis.FakeAsyncRedis(server=server)


def worker(db, redis, settings, clock, url: str) -> NotificationsWorker:
    """The notifications worker on the test's own loop, mailing ``url``."""
    return NotificationsWorker(
        db=db, redis=own_client(redis), namespace=settings.redis_namespace, clock=clock,
        mailer=SmtpSender(url, sender="Club <club@example.com>", timeout=2.0),
        renderer=TemplateRenderer(secret=settings.secret, public_url=PUBLIC),
    )  # fmt: skip


async def member(client, brand, external_id: str, email: str | None = None, db=None, locale: str = "") -> None:
    body = {"external_id": external_id, **({"locale": locale} if locale else {})}
    created = await client.post("/v1/members", json=body, headers=brand.headers)
    assert created.status_code in (200, 201), created.text
    if email is not None:
        async with db.write() as session:
            await session.execute(
                update(MemberRow)
                .where(MemberRow.brand_id == brand.brand.id, MemberRow.external_id == external_id)
                .values(email=email)
            )


async def feed(client, brand, external_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/members/{external_id}/notifications", headers=brand.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_feed_has_each_kind_unread_count_and_mark_read(app, brand, db, clock):
    now = clock.now()
    clock.set(now - timedelta(days=25))  # a visit 25 days ago: its points expire in 6 days (notice at 7)
    assert (await app.put("/v1/program", json=PROGRAM, headers=brand.headers)).status_code == 200
    sent = await app.post("/v1/events", json=event("v0", "m", "visit", clock.now().isoformat()), headers=brand.headers)
    assert sent.status_code == 200, sent.text
    clock.set(now)
    await settlement.expire_due(db, now=now)  # the points job: a points.expiring notice
    assert (await app.put("/v1/badges/vip", json={"key": "vip", "name": "VIP"}, headers=brand.headers)).status_code in (
        200,
        201,
    )
    assert (
        await app.post("/v1/members/m/badges/vip/grant", json={"reason": "welcome"}, headers=brand.headers)
    ).status_code in (200, 201)
    reward = {"name": {"en": "Free coffee", "it": "Caffè gratis"}, "cost": 10, "type": "product"}
    assert (await app.put("/v1/rewards/coffee", json=reward, headers=brand.headers)).status_code in (200, 201)
    redeemed = await app.post(
        "/v1/members/m/redemptions", json={"reward": "coffee"}, headers={**brand.headers, "Idempotency-Key": "n-1"}
    )
    assert redeemed.status_code == 201, redeemed.text
    policy = {"event": "purchase", "referrer_points": 20, "friend_points": 10}
    assert (await app.put("/v1/referrals/policy", json=policy, headers=brand.headers)).status_code == 200
    friend = await _referred_friend(app, brand, db, clock)
    board = {"key": "visits", "title": "Visits", "metric": {"kind": "event_count", "event_type": "visit"}}
    assert (await app.put("/v1/leaderboards/visits", json=board, headers=brand.headers)).status_code in (200, 201)
    at = now.isoformat()
    for event_id, who in (("b1", "rival"), ("b2", "rival"), ("b3", "m")):
        assert (
            await app.post("/v1/events", json=event(event_id, who, "visit", at), headers=brand.headers)
        ).status_code == 200
    climb = {"events": [event("b4", "m", "visit", at), event("b5", "m", "visit", at)]}  # 1 → 3 visits: rank 2 → 1
    assert (await app.post("/v1/events", json=climb, headers=brand.headers)).status_code == 200

    # The app's worker (its pipeline step queued the rank changes), one pass on the app's own loop.
    derive = app.app.state.services.notifications.derive
    touched = await asyncio.to_thread(app.blocking_portal.call, derive)
    assert brand.brand.id in {b for b, _ in touched}  # the worker reads every brand's outbox (a shared database)
    again = await asyncio.to_thread(app.blocking_portal.call, derive)  # the same messages (look-back): nothing new
    assert not {pair for pair in again if pair[0] == brand.brand.id}

    mine = await feed(app, brand, "m")
    kinds = {item["kind"] for item in mine["items"]}
    assert {"badge_earned", "challenge_completed", "tier_changed", "points_expiring", "reward_redeemed"} <= kinds
    rival = await feed(app, brand, "rival")
    overtaken = [i for i in rival["items"] if i["kind"] == "overtaken"]
    assert len(overtaken) == 1 and overtaken[0]["data"]["board"] == "visits"
    assert overtaken[0]["text"].startswith("Someone overtook you on visits")
    assert mine["unread"] == len(mine["items"])
    referrer = await feed(app, brand, "anna")
    assert [i["kind"] for i in referrer["items"]] == ["referral_qualified"]
    assert "referral_qualified" in {i["kind"] for i in (await feed(app, brand, friend))["items"]}

    first = mine["items"][0]["id"]
    marked = await app.post("/v1/members/m/notifications/read", json={"ids": [first]}, headers=brand.headers)
    assert marked.json() == {"marked": 1, "unread": mine["unread"] - 1}
    other = await app.post(
        "/v1/members/rival/notifications/read", json={"ids": [mine["items"][1]["id"]]}, headers=brand.headers
    )
    assert other.json()["marked"] == 0  # another member's id changes nothing
    everything = await app.post("/v1/members/m/notifications/read", json={"ids": None}, headers=brand.headers)
    assert everything.json()["unread"] == 0
    assert (await feed(app, brand, "m"))["unread"] == 0
    bad = await app.post("/v1/members/m/notifications/read", json={"ids": [0]}, headers=brand.headers)
    assert bad.status_code == 422 and (await feed(app, brand, "m"))["unread"] == 0


async def _referred_friend(app, brand, db, clock) -> str:
    from enrollment import service as enrollment
    from referrals import service as referrals

    assert (await app.post("/v1/members", json={"external_id": "anna"}, headers=brand.headers)).status_code in (
        200,
        201,
    )
    code = (await app.get("/v1/referrals/members/anna", headers=brand.headers)).json()["code"]
    email = f"friend-{brand.brand.slug}@example.com"
    join = enrollment.PendingJoin(
        brand_id=brand.brand.id, email=email, joined_via="referral", referral_code=code,
        asked_at=clock.now(), expires_at=clock.now() + timedelta(hours=1),
    )  # fmt: skip
    async with db.write() as session:
        member_id, external_id, _ = await enrollment.enrol(session, join=join, now=clock.now())
        await referrals.link_friend(
            session, brand_id=brand.brand.id, code=code, friend_id=member_id, friend_email=email,
            now=clock.now(),
        )  # fmt: skip
    bought = event("p1", external_id, "purchase", clock.now().isoformat(), amount=30)
    assert (await app.post("/v1/events", json=bought, headers=brand.headers)).status_code == 200
    return str(external_id)


async def grant(app, brand, badge: str, who: str) -> None:
    assert (
        await app.put(f"/v1/badges/{badge}", json={"key": badge, "name": badge.title()}, headers=brand.headers)
    ).status_code in (200, 201)
    granted = await app.post(f"/v1/members/{who}/badges/{badge}/grant", json={"reason": "test"}, headers=brand.headers)
    assert granted.status_code in (200, 201), granted.text


async def states(db, brand, external_id: str) -> list[tuple[str, str, int]]:
    async with db.read() as session:
        rows = await session.execute(
            select(NotificationRow.kind, NotificationRow.email_state, NotificationRow.email_attempts)
            .join(MemberRow, MemberRow.id == NotificationRow.member_id)
            .where(MemberRow.brand_id == brand.brand.id, MemberRow.external_id == external_id)
            .order_by(NotificationRow.id)
        )
        return [(k, s, int(a)) for k, s, a in rows]


async def test_email_arrives_with_list_unsubscribe_and_one_click_stops_that_kind(
    app, brand, db, redis, settings, clock, smtp
):
    inbox, url = smtp
    to = f"ada-{brand.brand.slug}@example.com"
    await member(app, brand, "ada", email=to, db=db, locale="it")
    w = worker(db, redis, settings, clock, url)
    channel = member_channel(settings.redis_namespace, brand.brand.id, await _member_id(db, brand, "ada"))
    pubsub = w.redis.pubsub()
    await pubsub.subscribe(channel)
    await grant(app, brand, "vip", "ada")
    passes = JOB_RUNS.labels("notifications", "ok")._value.get()
    await w.run_once()
    assert JOB_RUNS.labels("notifications", "ok")._value.get() == passes + 1  # a pass is a round of the job
    assert await states(db, brand, "ada") == [("badge_earned", "sent", 0)]
    heard = None
    for _ in range(50):  # the live stream's channel hears about the new notification
        heard = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if heard is not None:
            break
    await pubsub.aclose()
    assert heard is not None and b"notification" in heard["data"]
    [mail] = await asyncio.to_thread(inbox.wait_for, to)
    assert mail["Subject"] == f"Nuovo badge da {brand.brand.name}"
    assert mail["From"] == "Club <club@example.com>"
    unsubscribe = mail["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith(f"{PUBLIC}/unsubscribe/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Ciao ada" in text and "Hai ottenuto il badge Vip." in text and unsubscribe in text
    assert f'href="{unsubscribe}"' in mail.get_body(preferencelist=("html",)).get_content()

    path = urlsplit(unsubscribe).path
    page = await app.get(path)  # a GET only asks (link scanners follow links)
    assert page.status_code == 200 and "<form" in page.text
    forged = await app.post(path[:-3] + "xyz", content=b"List-Unsubscribe=One-Click")
    assert forged.status_code == 400
    app.cookies.clear()  # RFC 8058: the mail client's POST carries no cookie and no CSRF token
    done = await app.post(
        path, content=b"List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert done.status_code == 200, done.text
    await grant(app, brand, "star", "ada")  # the same kind again: no mail
    await w.run_once()
    assert [s for k, s, _ in await states(db, brand, "ada")] == ["sent", "skipped"]
    assert len(inbox.wait_for(to, count=2, timeout=0.3)) == 1


async def test_one_pass_sends_every_due_email_behind_a_backlog_longer_than_a_claim(
    app, brand, db, redis, settings, clock, smtp
):
    """A pass claims :data:`notifications.mailing.BATCH` rows at a time and goes on until none is due."""
    inbox, url = smtp
    to = f"cy-{brand.brand.slug}@example.com"
    await member(app, brand, "cy", email=to, db=db)
    backlog = [f"nomail-{n}" for n in range(mailing.BATCH + 30)]  # due rows of members without an address
    async with db.write() as session:
        found = await member_locks.ensure_and_lock(
            session, db=db, brand_id=brand.brand.id, external_ids=backlog, now=clock.now()
        )
        rows = [
            feed_rows.new_row(brand_id=brand.brand.id, member_id=m.id, kind="badge_earned", source=f"backlog-{m.id}",
                              data={"badge": "vip"}, now=clock.now())
            for m in found.values()
        ]  # fmt: skip
        await feed_rows.insert_rows(session, rows)
    w = worker(db, redis, settings, clock, url)
    await grant(app, brand, "vip", "cy")  # its row comes after the backlog's
    updates: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        if statement.lstrip().startswith("UPDATE notifications"):  # each row of an executemany runs on its own
            updates.extend([statement] * (len(parameters) if executemany else 1))

    engines = [engine.sync_engine for engine in db.engines]
    for engine in engines:
        sa_event.listen(engine, "before_cursor_execute", count)
    try:
        report = await w.run_once()
    finally:
        for engine in engines:
            sa_event.remove(engine, "before_cursor_execute", count)
    assert await states(db, brand, "cy") == [("badge_earned", "sent", 0)]
    assert report.sent == 1 and report.skipped >= len(backlog)
    assert all(state == "skipped" for kind, state, _ in await states(db, brand, "nomail-0")), "the backlog is skipped"
    # One statement per outcome of a claim (skipped, leased), then the sent row: not one per row (an executemany
    # of the ORM's flush runs each row's UPDATE on the server).
    assert len(updates) <= 2 * 2 + 1, updates
    assert len(await asyncio.to_thread(inbox.wait_for, to)) == 1


async def _member_id(db, brand, external_id: str) -> int:
    async with db.read() as session:
        return int(
            await session.scalar(
                select(MemberRow.id).where(MemberRow.brand_id == brand.brand.id, MemberRow.external_id == external_id)
            )
        )


async def test_failed_smtp_is_retried_with_backoff(app, brand, db, redis, settings, clock, smtp):
    inbox, url = smtp
    to = f"bo-{brand.brand.slug}@example.com"
    await member(app, brand, "bo", email=to, db=db)
    await grant(app, brand, "vip", "bo")
    down = worker(db, redis, settings, clock, f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
    report = await down.run_once()
    assert report.retried >= 1
    assert await states(db, brand, "bo") == [("badge_earned", "pending", 1)]
    up = worker(db, redis, settings, clock, url)
    await up.run_once()
    assert await states(db, brand, "bo") == [("badge_earned", "pending", 1)]  # the first retry waits 30 seconds
    clock.set(clock.now() + timedelta(seconds=31))
    await up.run_once()
    [mail] = await asyncio.to_thread(inbox.wait_for, to)
    assert mail["Subject"] == f"New badge at {brand.brand.name}"
    assert await states(db, brand, "bo") == [("badge_earned", "sent", 1)]


async def test_digest_combines_a_day_and_quiet_hours_hold(app, brand, db, redis, settings, clock, smtp):
    inbox, url = smtp
    controls = BrandControls(quiet_start="22:00", quiet_end="08:00", digest_hour=9)
    async with db.write() as session:
        await preferences.save_controls(session, brand_id=brand.brand.id, controls=controls)
    daily, night = f"d-{brand.brand.slug}@example.com", f"n-{brand.brand.slug}@example.com"
    await member(app, brand, "daily", email=daily, db=db)
    await member(app, brand, "night", email=night, db=db)
    async with db.write() as session:
        await preferences.save_choices(
            session, brand_id=brand.brand.id, member_id=await _member_id(db, brand, "daily"),
            chosen=MemberChoices(digest=True), now=clock.now(),
        )  # fmt: skip
    w = worker(db, redis, settings, clock, url)
    await grant(app, brand, "vip", "daily")
    await grant(app, brand, "star", "daily")
    await w.run_once()  # 11:00 in Rome: held for tomorrow's 09:00 digest
    assert [s for _, s, _ in await states(db, brand, "daily")] == ["digest", "digest"]
    clock.set(datetime(2026, 11, 20, 21, 30, tzinfo=UTC))  # 22:30 in Rome: quiet hours
    await grant(app, brand, "vip", "night")
    await w.run_once()
    assert await states(db, brand, "night") == [("badge_earned", "pending", 0)]
    assert inbox.wait_for(night, timeout=0.2) == []
    clock.set(datetime(2026, 11, 21, 7, 0, tzinfo=UTC))  # 08:00 in Rome: quiet hours are over
    await w.run_once()
    assert len(await asyncio.to_thread(inbox.wait_for, night)) == 1
    assert inbox.wait_for(daily, timeout=0.2) == []  # the digest waits for 09:00
    clock.set(datetime(2026, 11, 21, 8, 0, tzinfo=UTC))  # 09:00 in Rome
    await w.run_once()
    [digest] = await asyncio.to_thread(inbox.wait_for, daily)
    assert digest["Subject"] == f"Your day at {brand.brand.name}"
    body = digest.get_body(preferencelist=("plain",)).get_content()
    assert "You earned the badge Vip." in body and "You earned the badge Star." in body
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    await w.run_once()
    assert len(inbox.wait_for(daily, count=2, timeout=0.3)) == 1  # one mail for the day, sent once
    assert [s for _, s, _ in await states(db, brand, "daily")] == ["sent", "sent"]


async def test_feed_is_sealed_per_brand_exported_and_erased(app, brand, db, redis, settings, clock):
    from tests.helpers import make_brand

    other = await make_brand(db, clock)
    await member(app, brand, "eve")
    await grant(app, brand, "vip", "eve")
    await worker(db, redis, settings, clock, f"smtp://127.0.0.1:{free_port()}").derive()
    assert [i["kind"] for i in (await feed(app, brand, "eve"))["items"]] == ["badge_earned"]
    foreign = await app.get("/v1/members/eve/notifications", headers=other.headers)
    assert foreign.status_code == 404  # another brand's key sees no such member
    marked = await app.post("/v1/members/eve/notifications/read", json={"ids": None}, headers=other.headers)
    assert marked.status_code == 404 and (await feed(app, brand, "eve"))["unread"] == 1
    exported = (await app.get("/v1/members/eve/export", headers=brand.headers)).json()
    assert [n["kind"] for n in exported["sections"]["notifications"]] == ["badge_earned"]
    eve = await _member_id(db, brand, "eve")
    erased = await app.delete("/v1/members/eve", headers=brand.headers)
    assert erased.status_code in (200, 204), erased.text
    async with db.read() as session:
        left = await session.scalars(select(NotificationRow.id).where(NotificationRow.member_id == eve))
        assert list(left) == []

"""Notifications on both backends: the feed for each kind, unread and read, live announcements, and email
through a real SMTP server on loopback (headers, one-click unsubscribe, retries, digest, quiet hours)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from engine import settlement
from engine.mail import SmtpSender
from engine.orm import MemberRow
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


def worker(db, redis, settings, clock, url: str) -> NotificationsWorker:
    """The notifications worker on the test's own loop, mailing ``url``."""
    return NotificationsWorker(
        db=db, redis=redis, namespace=settings.redis_namespace, clock=clock,
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


async def test_feed_has_each_kind_unread_count_and_mark_read(app, brand, db, redis, settings, clock):
    w = worker(db, redis, settings, clock, f"smtp://127.0.0.1:{free_port()}")
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

    touched = await w.derive()
    assert touched and all(b == brand.brand.id for b, _ in touched)
    again = await w.derive()  # the same outbox messages again (look-back): nothing new
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
    join = enrollment.PendingJoin(
        brand_id=brand.brand.id, email="bea@example.com", joined_via="referral", referral_code=code,
        asked_at=clock.now(), expires_at=clock.now() + timedelta(hours=1),
    )  # fmt: skip
    async with db.write() as session:
        member_id, external_id, _ = await enrollment.enrol(session, join=join, now=clock.now())
        await referrals.link_friend(
            session, brand_id=brand.brand.id, code=code, friend_id=member_id, friend_email="bea@example.com",
            now=clock.now(),
        )  # fmt: skip
    bought = event("p1", external_id, "purchase", clock.now().isoformat(), amount=30)
    assert (await app.post("/v1/events", json=bought, headers=brand.headers)).status_code == 200
    return str(external_id)

"""Referrals: both sides paid exactly once when the friend qualifies, and every guard (both backends)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from engine.ids import BrandId
from enrollment import service as enrollment
from referrals import service as referrals
from tests.helpers import event

POLICY = {
    "event": "purchase",
    "filter": {"field": "properties.amount", "gte": 20},
    "referrer_points": 200,
    "friend_points": 100,
    "monthly_cap": 2,
}


async def setup(client, brand, policy=POLICY) -> str:
    response = await client.put("/v1/referrals/policy", json=policy, headers=brand.headers)
    assert response.status_code == 200, response.text
    enrolled = await client.post("/v1/members", json={"external_id": "anna"}, headers=brand.headers)
    assert enrolled.status_code in (200, 201)
    link = (await client.get("/v1/referrals/members/anna", headers=brand.headers)).json()
    assert link["url"].endswith(f"/join/{brand.brand.slug}?ref={link['code']}")
    return str(link["code"])


async def friend(db, clock, brand, code: str, email: str) -> tuple[str, str]:
    """A friend joined through ``code``; returns their external id and the link outcome."""
    join = enrollment.PendingJoin(
        brand_id=brand.brand.id, email=email, joined_via="referral", referral_code=code,
        asked_at=clock.now(), expires_at=clock.now() + timedelta(hours=1),
    )  # fmt: skip
    async with db.write() as session:
        member_id, external_id, _ = await enrollment.enrol(session, join=join, now=clock.now())
        outcome = await referrals.link_friend(
            session,
            brand_id=BrandId(brand.brand.id),
            code=code,
            friend_id=member_id,
            friend_email=email,
            now=clock.now(),
        )
    return external_id, outcome


async def balance(client, brand, member: str) -> int:
    return int((await client.get(f"/v1/members/{member}/points", headers=brand.headers)).json()["balance"])


async def buy(client, brand, event_id: str, member: str, amount: float, **extra):
    response = await client.post(
        "/v1/events", json=event(event_id, member, "purchase", "2026-11-20T09:00:00Z", amount=amount, **extra),
        headers=brand.headers,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


async def test_first_qualifying_event_pays_both_once(client, brand, db, clock):
    code = await setup(client, brand)
    bea, outcome = await friend(db, clock, brand, code, "bea@example.com")
    assert outcome == "linked"
    await buy(client, brand, "p1", bea, 10)  # below the filter: not yet
    assert await balance(client, brand, "anna") == 0
    paid = await buy(client, brand, "p2", bea, 25)
    assert {"type": "points_awarded", "points": 100, "source": "referral", "key": "friend"}.items() <= next(
        e for e in paid["effects"] if e.get("source") == "referral"
    ).items()
    async with db.read() as session:
        from sqlalchemy import select

        from engine.orm import OutboxRow

        payloads = (
            await session.scalars(
                select(OutboxRow.payload).where(
                    OutboxRow.brand_id == brand.brand.id, OutboxRow.topic == "referral.qualified"
                )
            )
        ).all()
    assert [p["data"]["referrer"] for p in payloads] == ["anna"] and payloads[0]["data"]["member"] == bea
    await buy(client, brand, "p3", bea, 50)
    assert await balance(client, brand, "anna") == 200
    assert await balance(client, brand, bea) == 100
    funnel = (await client.get("/v1/referrals/funnel", headers=brand.headers)).json()
    assert "invited" in funnel, funnel
    assert (funnel["invited"], funnel["joined"], funnel["qualified"], funnel["paid"]) == (1, 1, 1, 1)


async def test_a_friend_counts_once_and_self_referrals_are_refused(client, brand, db, clock):
    code = await setup(client, brand)
    await friend(db, clock, brand, code, "bea2@example.com")
    async with db.write() as session:
        anna = await enrollment.member_by_email(session, brand_id=BrandId(brand.brand.id), email="bea2@example.com")
        assert anna is not None
        again = await referrals.link_friend(
            session, brand_id=BrandId(brand.brand.id), code=code, friend_id=anna[0], friend_email="bea2@example.com",
            now=clock.now(),
        )  # fmt: skip
        assert again == "already-linked"
        # the referrer's own code, and a friend with the referrer's email, are refused
        own = await referrals.code_for(session, brand_id=BrandId(brand.brand.id), member_id=anna[0], now=clock.now())
        assert (
            await referrals.link_friend(
                session,
                brand_id=BrandId(brand.brand.id),
                code=own,
                friend_id=anna[0],
                friend_email="x@example.com",
                now=clock.now(),
            )
            == "self-referral"
        )
        assert (
            await referrals.link_friend(
                session,
                brand_id=BrandId(brand.brand.id),
                code=own,
                friend_id=anna[0],
                friend_email="bea2@example.com",
                now=clock.now(),
            )
            == "self-referral"
        )
        assert (
            await referrals.link_friend(
                session,
                brand_id=BrandId(brand.brand.id),
                code="NOPE",
                friend_id=anna[0],
                friend_email="z@example.com",
                now=clock.now(),
            )
            == "unknown-code"
        )


async def test_same_device_is_a_self_referral(client, brand, db, clock):
    code = await setup(client, brand)
    await buy(client, brand, "a1", "anna", 5, device_id="phone-1")
    carl, _ = await friend(db, clock, brand, code, "carl@example.com")
    await buy(client, brand, "c1", carl, 30, device_id="phone-1")
    assert await balance(client, brand, "anna") == 0 and await balance(client, brand, carl) == 0
    funnel = (await client.get("/v1/referrals/funnel", headers=brand.headers)).json()
    assert funnel["rejected"] == 1 and funnel["paid"] == 0


async def test_monthly_cap_holds_for_review_and_approval_pays_once(client, brand, db, clock):
    code = await setup(client, brand, {**POLICY, "monthly_cap": 1})
    first, _ = await friend(db, clock, brand, code, "f1@example.com")
    second, _ = await friend(db, clock, brand, code, "f2@example.com")
    third, _ = await friend(db, clock, brand, code, "f3@example.com")
    await buy(client, brand, "f1-1", first, 30)
    await buy(client, brand, "f2-1", second, 30)
    await buy(client, brand, "f3-1", third, 30)
    assert await balance(client, brand, "anna") == 200
    held = (await client.get("/v1/referrals/held", headers=brand.headers)).json()
    assert [h["friend"] for h in held] == [second, third] and held[0]["reason"] == "monthly cap reached"
    approve = await client.post(f"/v1/referrals/held/{held[0]['id']}", json={"approve": True}, headers=brand.headers)
    assert approve.status_code == 200
    again = await client.post(f"/v1/referrals/held/{held[0]['id']}", json={"approve": True}, headers=brand.headers)
    assert again.status_code == 404
    reject = await client.post(f"/v1/referrals/held/{held[1]['id']}", json={"approve": False}, headers=brand.headers)
    assert reject.status_code == 200
    assert await balance(client, brand, "anna") == 400
    assert await balance(client, brand, second) == 100 and await balance(client, brand, third) == 0


async def test_concurrent_qualifying_events_pay_exactly_once(client, brand, db, clock, backend):
    if not backend.startswith("postgres"):
        pytest.skip("concurrency is meaningful on PostgreSQL (SQLite serialises writers)")
    code = await setup(client, brand)
    dora, _ = await friend(db, clock, brand, code, "dora@example.com")
    results = await asyncio.gather(*(buy(client, brand, f"d{i}", dora, 40) for i in range(12)))
    assert len(results) == 12
    assert await balance(client, brand, "anna") == 200
    assert await balance(client, brand, dora) == 100


async def test_policy_is_validated(client, brand):
    bad = await client.put(
        "/v1/referrals/policy",
        json={"event": "purchase", "filter": {"field": "properties.amount", "between": 1}},
        headers=brand.headers,
    )
    assert bad.status_code in (400, 422)
    assert (await client.get("/v1/referrals/policy", headers=brand.headers)).status_code == 404


async def test_a_batch_pays_each_friend_once_in_event_order_with_one_look_up(client, brand, db, clock):
    from sqlalchemy import event as sa_event

    code = await setup(client, brand)
    eva, _ = await friend(db, clock, brand, code, "eva@example.com")
    fay, _ = await friend(db, clock, brand, code, "fay@example.com")
    at = "2026-11-20T09:00:00Z"
    events = [event(f"s{i}", f"shopper-{i}", "purchase", at, amount=30) for i in range(60)]  # not referred
    events += [
        event("e1", eva, "purchase", at, amount=10),  # below the filter
        event("e2", eva, "purchase", at, amount=25),  # qualifies: both paid
        event("e3", eva, "purchase", at, amount=40),  # qualifies again: nothing more
        event("a1", "anna", "purchase", at, amount=5, device_id="tablet-9"),  # the referrer's device, first…
        event("f1", fay, "purchase", at, amount=30, device_id="tablet-9"),  # …then fay's on it: self-referral
    ]
    seen: list[str] = []

    def statement(_conn, _cursor, text, *_args):
        seen.append(text)

    engines = [engine.sync_engine for engine in client.app.state.services.db.engines]
    for engine in engines:
        sa_event.listen(engine, "before_cursor_execute", statement)
    try:
        response = await client.post("/v1/events", json={"events": events}, headers=brand.headers)
    finally:
        for engine in engines:
            sa_event.remove(engine, "before_cursor_execute", statement)
    assert response.status_code == 200, response.text
    effects = {r["id"]: [e for e in r["effects"] if e.get("source") == "referral"] for r in response.json()["results"]}
    assert [e["points"] for e in effects["e2"]] == [100] and effects["e3"] == [] and effects["f1"] == []
    assert await balance(client, brand, "anna") == 200
    funnel = (await client.get("/v1/referrals/funnel", headers=brand.headers)).json()
    assert (funnel["paid"], funnel["rejected"]) == (1, 1)
    # one look-up of the unit's referred friends, then each qualifying event of one of them (e2, e3, f1)
    # reads its own referral: not one read per purchase of the batch (63 qualify by amount)
    look_ups = [s for s in seen if "FROM referrals" in s and "FOR UPDATE" not in s and "count(" not in s]
    assert len(look_ups) <= 1 + 3, look_ups

"""Retraction of events over HTTP on both backends: every rule type re-folded, points, policies, races, sources."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.orm import EventRetractionRow, OutboxRow
from integrations.shop import sign
from tests.helpers import event, make_brand
from tests.payloads import shopify_order, shopify_refund

CAMPAIGN = {"key": "always", "title": "Always", "starts_at": "2026-11-01", "ends_at": "2027-01-01"}
RULES = {
    "count": {"type": "count", "event_type": "purchase", "target": 10},
    "sum": {"type": "sum", "event_type": "purchase", "property": "amount", "target": 1000},
    "streak": {"type": "streak", "event_type": "purchase", "period": "day", "target": 10},
    "distinct": {"type": "distinct", "event_type": "purchase", "property": "store", "target": 10},
    "sequence": {
        "type": "sequence",
        "steps": [
            {"event_type": "purchase"},
            {"event_type": "purchase"},
            {"event_type": "purchase"},
            {"event_type": "purchase"},
        ],
    },
    "first": {"type": "first", "event_type": "purchase"},
}
BUY = {"key": "buy", "event_type": "purchase", "per_unit": {"property": "amount"}}


def program(rule: dict, *, reward: dict | None = None, policy: str | None = None) -> dict:
    doc: dict = {
        "earning_rules": [BUY],
        "campaigns": [CAMPAIGN],
        "challenges": [
            {"key": "c", "campaign": "always", "title": "C", "rule": rule, **({"reward": reward} if reward else {})}
        ],
    }
    if policy:
        doc["retraction"] = [{"completions": policy}]
    return doc


async def apply(client, brand, document):
    response = await client.put("/v1/program", json=document, headers=brand.headers, params={"mode": "apply"})
    assert response.status_code == 200, response.text


async def send(client, brand, *events):
    response = await client.post("/v1/events", json={"events": list(events)}, headers=brand.headers)
    assert response.status_code == 200, response.text


async def retract(client, brand, event_id, body=None, headers=None):
    return await client.post(
        f"/v1/events/{event_id}/retract", json=body or {}, headers={**brand.headers, **(headers or {})}
    )


async def view(client, brand, member, key="c"):
    response = await client.get(f"/v1/members/{member}/challenges/{key}", headers=brand.headers)
    assert response.status_code == 200, response.text
    data = response.json()
    return {k: data.get(k) for k in ("progress", "target", "status", "completions", "streak")}


async def balance(client, brand, member):
    response = await client.get(f"/v1/members/{member}/points", headers=brand.headers)
    assert response.status_code == 200, response.text
    return int(response.json()["balance"])


@pytest.fixture
async def sweeper(backend, settings, redis, clock):
    """The retraction sweep on services of the test's own event loop (the app serves on another one)."""
    from web.wiring import open_services

    async with open_services(
        settings, clock=clock, redis=redis if backend.endswith("fakeredis") else None, migrate=False
    ) as services:
        yield services


async def sweep(services, brand) -> int:
    return await services.retractions.apply_pending(brand.brand.id)


def purchases(member: str, prefix: str, days: list[int], *, amount: float = 100.0):
    return [
        event(f"{prefix}-{d}", member, "purchase", f"2026-11-{d:02d}T09:00:00Z", amount=amount, store=f"s{d}")
        for d in days
    ]


async def test_each_rule_type_refolds_to_the_remaining_events(client, brand):
    document = program(RULES["count"])
    document["challenges"] = [
        {"key": kind, "campaign": "always", "title": kind.title(), "rule": rule} for kind, rule in RULES.items()
    ]
    await apply(client, brand, document)
    days = [10, 11, 12, 13, 14]
    await send(client, brand, *purchases("anna", "a", days))
    await send(client, brand, *purchases("bruno", "b", [d for d in days if d != 12]))
    await send(client, brand, *purchases("carla", "c", [d for d in days if d not in (10, 12)]))
    middle = await retract(client, brand, "a-12", {"reason": "refund"})
    assert middle.status_code == 200, middle.text
    assert middle.json()["status"] == "applied", middle.text
    # a middle day removed: the streak is broken (13-14), the sequence and distinct lose a step, the sum 100
    for kind in RULES:
        assert await view(client, brand, "anna", kind) == await view(client, brand, "bruno", kind), kind
    assert (await view(client, brand, "anna", "streak"))["progress"] != 5
    assert await balance(client, brand, "anna") == await balance(client, brand, "bruno") == 400
    explained = await client.get("/v1/members/anna/challenges/count/explain", headers=brand.headers)
    assert explained.status_code == 200, explained.text
    by_id = {e["id"]: e for e in explained.json()["events"]}
    assert (by_id["a-12"]["reason"], by_id["a-12"]["counted"]) == ("retracted", False)
    assert by_id["a-12"]["retracted_at"] is not None and by_id["a-13"]["reason"] == "counted"
    first = await retract(client, brand, "a-10")  # the event that completed `first`: the next one still does
    assert first.status_code == 200, first.text
    for kind in RULES:
        assert await view(client, brand, "anna", kind) == await view(client, brand, "carla", kind), kind


async def test_partial_refund_reduces_points_and_sum_proportionally(client, brand):
    await apply(client, brand, program(RULES["sum"]))
    await send(client, brand, *purchases("anna", "a", [10, 11], amount=100.0))
    await send(client, brand, event("b-10", "bruno", "purchase", "2026-11-10T09:00:00Z", amount=60.0, store="s10"))
    await send(client, brand, *purchases("bruno", "b", [11], amount=100.0))
    answer = await retract(client, brand, "a-10", {"amount": 40}, headers={"Idempotency-Key": "refund-1"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"]["points"]["cancelled"] == 40
    assert await balance(client, brand, "anna") == 160 == await balance(client, brand, "bruno")
    assert await view(client, brand, "anna") == await view(client, brand, "bruno")
    again = await retract(client, brand, "a-10", {"amount": 40}, headers={"Idempotency-Key": "refund-1"})
    assert again.status_code == 200 and await balance(client, brand, "anna") == 160
    rest = await retract(client, brand, "a-10", {"amount": 100})  # more than is left: the rest, whole
    assert rest.json()["outcome"]["whole"] is True
    assert await balance(client, brand, "anna") == 100
    bad = await retract(client, brand, "a-11", {"amount": -3})
    assert bad.status_code == 422
    await send(client, brand, event("v-1", "anna", "visit", "2026-11-12T09:00:00Z"))
    no_amount = await retract(client, brand, "v-1", {"amount": 5})
    assert (no_amount.status_code, no_amount.json()["field"]) == (422, "amount")
    assert (await retract(client, brand, "a-11", {"amount": 5, "extra": 1})).status_code in (400, 422)
    assert await balance(client, brand, "anna") == 100


@pytest.mark.parametrize("policy", ["claw_back", "keep"])
async def test_completion_policies(client, brand, db, policy):
    rule = {"type": "count", "event_type": "purchase", "target": 2}
    await apply(client, brand, program(rule, reward={"points": 50}, policy=policy))
    loyal = {"key": "loyal", "name": "Loyal", "rule": {"event_type": "purchase"}, "levels": [
        {"key": "bronze", "threshold": 1}, {"key": "silver", "threshold": 2, "points": 5}]}  # fmt: skip
    assert (await client.put("/v1/badges/loyal", json=loyal, headers=brand.headers)).status_code == 201
    await send(client, brand, *purchases("anna", "a", [10, 11], amount=10.0))
    assert await balance(client, brand, "anna") == 75
    answer = await retract(client, brand, "a-10")
    assert answer.status_code == 200, answer.text
    state = await view(client, brand, "anna")
    shelf = (await client.get("/v1/members/anna/badges", headers=brand.headers)).json()
    levels = [a["level"] for e in shelf["earned"] for a in e["awards"]]
    if policy == "claw_back":
        assert await balance(client, brand, "anna") == 10
        assert (state["progress"], state["status"], state["completions"]) == (1, "in_progress", 0)
        assert levels == ["bronze"]
    else:
        assert await balance(client, brand, "anna") == 65
        assert state["status"] == "completed"
        assert levels == ["bronze", "silver"]
    async with db.read() as session:
        topics = (await session.scalars(select(OutboxRow.topic).where(OutboxRow.brand_id == brand.brand.id))).all()
    assert topics.count("event.retracted") == 1
    exported = (await client.get("/v1/program", headers=brand.headers)).json()
    assert exported["retraction"] == [{"completions": policy}]
    wrong = await client.put("/v1/program", json={"retraction": [{"completions": "maybe"}]}, headers=brand.headers)
    assert wrong.status_code == 422 and wrong.json()["field"].startswith("$.retraction[0]")


async def test_spent_points_are_clawed_back_up_to_zero(client, brand):
    await apply(client, brand, program(RULES["count"]))
    await send(client, brand, *purchases("anna", "a", [10], amount=100.0))
    await send(client, brand, *purchases("anna", "x", [11], amount=30.0))
    spend = await client.post(
        "/v1/members/anna/points/adjustments", json={"points": -120, "reason": "gift"}, headers=brand.headers
    )
    assert spend.status_code in (200, 201), spend.text
    answer = await retract(client, brand, "a-10")
    points = answer.json()["outcome"]["points"]
    assert points == {"cancelled": 0, "clawed_back": 10, "unrecovered": 90}  # the spend took the lot first
    assert await balance(client, brand, "anna") == 0


async def test_retraction_within_the_holding_period_cancels_the_pending_points(client, brand, clock):
    await apply(client, brand, {"earning_rules": [{**BUY, "holding_days": 14}]})
    await send(client, brand, event("h-1", "anna", "purchase", "2026-11-19T09:00:00Z", amount=80.0, store="s1"))
    await send(client, brand, event("h-2", "anna", "purchase", "2026-11-19T10:00:00Z", amount=20.0, store="s1"))

    async def points():
        response = await client.get("/v1/members/anna/points", headers=brand.headers)
        assert response.status_code == 200, response.text
        return response.json()

    before = await points()
    assert (before["available"], before["pending"]) == (0, 100)
    answer = await retract(client, brand, "h-1", {"reason": "returned"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"]["points"] == {"cancelled": 80, "clawed_back": 0, "unrecovered": 0}
    after = await points()
    assert (after["available"], after["pending"]) == (0, 20)
    assert [lot["points"] for lot in after["pending_lots"]] == [20]
    clock.advance(timedelta(days=15))  # the holding period ends: only what was not cancelled is released
    released = await points()
    assert (released["available"], released["pending"], released["lifetime_earned"]) == (20, 0, 20)


async def test_retraction_before_arrival_is_applied_when_the_event_comes(client, brand, sweeper):
    await apply(client, brand, program(RULES["count"]))
    unknown = await retract(client, brand, "late-1")
    assert unknown.status_code == 404
    kept = await retract(client, brand, "late-1", {"if_unknown": "remember"})
    assert kept.status_code == 202 and kept.json()["status"] == "pending"
    await send(client, brand, *purchases("anna", "late", [1]))
    assert await sweep(sweeper, brand) in (0, 1)  # 0: the app's own sweep (every 5 s) came first
    assert await balance(client, brand, "anna") == 0
    assert (await view(client, brand, "anna"))["progress"] == 0
    assert await sweep(sweeper, brand) == 0


async def test_unknown_foreign_and_repeated(client, brand, db, clock):
    await apply(client, brand, program(RULES["count"]))
    other = await make_brand(db, clock)
    await apply(client, other, program(RULES["count"]))
    await send(client, other, *purchases("anna", "o", [10]))
    assert (await retract(client, brand, "o-10")).status_code == 404
    assert await balance(client, other, "anna") == 100
    await send(client, brand, *purchases("anna", "a", [10]))
    first = await retract(client, brand, "a-10")
    second = await retract(client, brand, "a-10")
    assert (first.json()["duplicate"], second.status_code, second.json()["duplicate"]) == (False, 200, True)
    assert await balance(client, brand, "anna") == 0
    assert (await client.post("/v1/events/a-10/retract", headers=brand.public_headers)).status_code in (401, 403)


async def test_races_apply_once(client, brand, db, sweeper):
    await apply(client, brand, program(RULES["count"]))
    await send(client, brand, *purchases("anna", "a", [10, 11]))
    answers = await asyncio.gather(*(retract(client, brand, "a-10") for _ in range(3)))
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True]
    racing = await asyncio.gather(
        retract(client, brand, "a-12", {"if_unknown": "remember"}), send(client, brand, *purchases("anna", "a", [12]))
    )
    assert racing[0].status_code in (200, 202)
    await sweep(sweeper, brand)
    assert await balance(client, brand, "anna") == 100
    assert (await view(client, brand, "anna"))["progress"] == 1
    async with db.read() as session:
        rows = (
            await session.scalars(select(EventRetractionRow).where(EventRetractionRow.brand_id == brand.brand.id))
        ).all()
    assert sorted((r.event_key, r.status) for r in rows) == [("a-10", "applied"), ("a-12", "applied")]


async def test_shopify_refund_is_a_real_retraction(client, brand, sweeper):
    await apply(client, brand, program(RULES["count"]))
    secret = "shpss_0123456789abcdef"
    put = await client.put(
        "/v1/integrations/shopify", json={"secret": secret, "shop_domain": "roma.myshopify.com"}, headers=brand.headers
    )
    assert put.status_code == 200, put.text
    url = f"/hooks/shopify/{brand.brand.slug}"
    refund = json.dumps(shopify_refund()).encode()
    headers = {"X-Shopify-Topic": "refunds/create", "Content-Type": "application/json"}
    early = await client.post(url, content=refund, headers={**headers, "X-Shopify-Hmac-Sha256": sign(secret, refund)})
    assert early.json()["detail"] == "retraction kept until the order arrives"
    order = json.dumps(shopify_order()).encode()
    paid = {**headers, "X-Shopify-Topic": "orders/paid", "X-Shopify-Hmac-Sha256": sign(secret, order)}
    assert (await client.post(url, content=order, headers=paid)).status_code == 200
    before = await balance(client, brand, "anna@example.com")
    await sweep(sweeper, brand)
    total = float(shopify_order()["total_price"])
    assert await balance(client, brand, "anna@example.com") == before - round(before * 41.94 / total)


async def test_segment_refund_before_its_order_by_order_id(client, brand, sweeper):
    await apply(client, brand, program(RULES["count"]))
    auth = {"Authorization": "Basic " + base64.b64encode(f"{brand.secret}:".encode()).decode()}
    order = {"order_id": "o-77", "revenue": 50.0, "currency": "EUR"}
    refund = {
        "type": "track", "userId": "dana", "event": "Order Refunded", "messageId": "r-77",
        "properties": {"order_id": "o-77", "total": 20},
    }  # fmt: skip
    paid = {
        "type": "track", "userId": "dana", "event": "Order Completed", "messageId": "p-77", "properties": order,
        "timestamp": "2026-11-19T08:00:00.000Z",
    }  # fmt: skip
    assert (await client.post("/segment/v1/track", json=refund, headers=auth)).status_code == 200
    assert (await client.post("/segment/v1/track", json=paid, headers=auth)).status_code == 200
    assert await balance(client, brand, "dana") == 50
    assert await sweep(sweeper, brand) in (0, 1)  # 0: the app's own sweep came first
    assert await balance(client, brand, "dana") == 30
    explained = await client.get("/v1/members/dana/challenges/c/explain", headers=brand.headers)
    assert explained.json()["events"][0]["refunded"] == 20


async def test_boards_rank_and_tier_counter_lose_the_event(client, brand):
    document = program(RULES["count"])
    document["tiers"] = {
        "qualification": {"metric": {"kind": "points_earned"}, "window": {"kind": "rolling", "days": 90}},
        "levels": [{"key": "silver", "threshold": 150}],
    }
    await apply(client, brand, document)
    boards = {
        "spenders": {"key": "spenders", "title": "Spenders", "metric": {"kind": "points"}},
        "buyers": {"key": "buyers", "title": "Buyers", "metric": {"kind": "event_count", "event_type": "purchase"}},
    }
    for key, board in boards.items():
        assert (await client.put(f"/v1/leaderboards/{key}", json=board, headers=brand.headers)).status_code == 201
    await send(client, brand, *purchases("anna", "a", [10, 11], amount=100.0))
    await send(client, brand, *purchases("bruno", "b", [10], amount=150.0))

    async def standing(key):
        page = await client.get(f"/v1/leaderboards/{key}", params={"around": "anna"}, headers=brand.headers)
        assert page.status_code == 200, page.text
        me = page.json()["me"]
        return me["rank"], me["score"]

    assert (await standing("spenders"), await standing("buyers")) == ((1, 200), (1, 2))
    answer = await retract(client, brand, "a-11", {"amount": 60})
    assert answer.json()["outcome"]["tiers"]["removed"] == 60
    assert await standing("spenders") == (2, 140)  # below bruno's 150 now
    assert await standing("buyers") == (1, 2)  # a partial refund leaves the purchase
    assert (await client.get("/v1/members/anna/tier", headers=brand.headers)).json()["value"] == 140
    await retract(client, brand, "a-10")
    assert (await standing("spenders"), await standing("buyers")) == ((2, 40), (1, 1))  # tied with bruno

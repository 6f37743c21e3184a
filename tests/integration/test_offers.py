"""Offers through the pipeline: budget under concurrency, per-member limit, opt-in, multiplier, sticky arms."""

import asyncio
from datetime import datetime

from engine.events import Event
from engine.pipeline import Pipeline
from engine.points import PointsProcessor
from segments.offer_step import Offers, OffersStep
from segments.processor import Segments, SegmentsStep

MEMBERS = [f"m{i}" for i in range(8)]
WINDOW = {"starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"}


def pipeline(db, clock):
    """A fresh pipeline: new caches, as after a restart."""
    steps = [SegmentsStep(Segments()), PointsProcessor(), OffersStep(Offers())]
    return Pipeline(db, processors=steps, clock=clock)


def purchase(event_id, member, amount=10, at="2026-11-20T09:00:00+00:00"):
    return Event(id=event_id, member=member, type="purchase", occurred_at=datetime.fromisoformat(at),
                 properties={"amount": amount})  # fmt: skip


def offer_points(results, key):
    return [sum(e.points for e in r.effects if getattr(e, "source", "") == "offer" and e.key == key) for r in results]


async def _put_offer(client, brand, body):
    answer = await client.put(f"/v1/offers/{body['key']}", json=body, headers=brand.headers)
    assert answer.status_code == 201, answer.text


async def test_budget_is_never_exceeded_under_concurrency(client, brand, db, clock):
    body = {"key": "ten", "kind": "bonus", "points": 10, "event_type": "purchase", "members": MEMBERS,
            "budget": 25, **WINDOW}  # fmt: skip
    await _put_offer(client, brand, body)
    run = pipeline(db, clock)
    results = await asyncio.gather(*(run.process(brand.brand, [purchase(f"e-{m}", m)]) for m in MEMBERS))
    given = [p for r in results for p in offer_points(r, "ten")]
    assert sorted(given, reverse=True)[:3] == [10, 10, 0] and sum(given) == 20
    stored = (await client.get("/v1/offers/ten", headers=brand.headers)).json()
    assert stored["given"] == 20
    report = (await client.get("/v1/offers/ten/report", headers=brand.headers)).json()
    assert report["arms"][0]["members"] == len(MEMBERS) and report["arms"][0]["points"] == 20
    lower = await client.put("/v1/offers/ten", json={**body, "budget": 15}, headers=brand.headers)
    assert lower.status_code == 409, lower.text  # below what it has given
    assert (await client.delete("/v1/members/m0", headers=brand.headers)).status_code == 204
    report = (await client.get("/v1/offers/ten/report", headers=brand.headers)).json()
    assert report["arms"][0]["members"] == len(MEMBERS) - 1  # an erased member's offer state is gone


async def test_limit_multiplier_and_opt_in(client, brand, db, clock):
    rule = {"key": "buy", "event_type": "purchase", "per_unit": {"property": "amount"}}
    assert (await client.put("/v1/earning-rules/buy", json=rule, headers=brand.headers)).status_code in (200, 201)
    body = {"key": "double", "kind": "multiplier", "multiplier": 3, "event_type": "purchase", "members": ["ada"],
            "per_member_limit": 2, "opt_in": True, **WINDOW}  # fmt: skip
    await _put_offer(client, brand, body)
    run = pipeline(db, clock)
    before = await run.process(brand.brand, [purchase("p1", "ada", 20)])
    assert offer_points(before, "double") == [0]  # not activated yet
    listed = (await client.get("/v1/members/ada/offers", headers=brand.headers)).json()
    assert [(o["key"], o["active"], o["uses_left"]) for o in listed] == [("double", False, 2)]
    activated = await client.post("/v1/members/ada/offers/double/activation", headers=brand.headers)
    assert activated.status_code == 200 and activated.json()[0]["active"] is True, activated.text
    again = await client.post("/v1/members/ada/offers/double/activation", headers=brand.headers)
    assert again.status_code == 200
    stranger = await client.post("/v1/members/ada/offers/nope/activation", headers=brand.headers)
    assert stranger.status_code == 404
    after = await run.process(brand.brand, [purchase(f"p{i}", "ada", 20) for i in range(2, 5)])
    assert offer_points(after, "double") == [40, 40, 0]  # (3 - 1) × 20, twice: the per-member limit


async def test_arms_are_sticky_across_a_restart_and_control_gets_nothing(client, brand, db, clock):
    body = {"key": "ab", "kind": "bonus", "points": 5, "event_type": "purchase", "members": MEMBERS, **WINDOW,
            "per_member_limit": 5,
            "experiment": {"arms": [{"key": "control", "percent": 50, "control": True},
                                    {"key": "treated", "percent": 50}]}}  # fmt: skip
    await _put_offer(client, brand, body)
    first = await pipeline(db, clock).process(brand.brand, [purchase(f"a-{m}", m) for m in MEMBERS])
    second = await pipeline(db, clock).process(brand.brand, [purchase(f"b-{m}", m) for m in MEMBERS])
    assert offer_points(first, "ab") == offer_points(second, "ab")
    assert set(offer_points(first, "ab")) == {0, 5}  # both arms are present among 8 members
    report = (await client.get("/v1/offers/ab/report", headers=brand.headers)).json()
    arms = {a["arm"]: a for a in report["arms"]}
    assert arms["control"]["members"] + arms["treated"]["members"] == len(MEMBERS)
    assert arms["control"]["points"] == 0 and arms["control"]["events_per_member"] == 2.0
    assert arms["treated"]["participation"] == 1.0 and arms["treated"]["uplift"]["difference"] == 0.0
    shown = (await client.get("/v1/members/m0/offers", headers=brand.headers)).json()
    control = arms["control"]["members"] and offer_points(first, "ab")[0] == 0
    assert (shown == []) is bool(control)  # a control member is not shown the offer

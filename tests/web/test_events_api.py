"""Event ingestion over HTTP, on SQLite+fakeredis and PostgreSQL+Redis."""

import asyncio

import pytest
from sqlalchemy import func, select, text

from engine.earning import EarningRuleSpec, PerUnit
from engine.orm import LedgerRow
from engine.rules_store import put_rule
from tests.helpers import event, make_brand, row_counts


@pytest.fixture
async def rules(db, brand, clock):
    await put_rule(
        db,
        brand_id=brand.brand.id,
        spec=EarningRuleSpec(key="visit", event_type="visit", points=10, daily_cap=25),
        now=clock.now(),
    )
    await put_rule(
        db,
        brand_id=brand.brand.id,
        spec=EarningRuleSpec(key="buy", event_type="purchase", per_unit=PerUnit(property="amount")),
        now=clock.now(),
    )


async def test_single_event_reports_points_and_duplicate_changes_nothing(client, brand, rules, db):
    body = event("e1", "anna", "purchase", "2026-11-20T09:00:00+01:00", amount=42.9)
    first = await client.post("/v1/events", json=body, headers=brand.headers)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "id": "e1",
        "member": "anna",
        "duplicate": False,
        "effects": [
            {"type": "points_awarded", "points": 42, "source": "rule", "key": "buy", "multiplier": 1.0, "capped": False}
        ],
    }
    before = await row_counts(db, brand.brand.id)
    again = await client.post("/v1/events", json={**body, "properties": {"amount": 1000}}, headers=brand.headers)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["effects"] == first.json()["effects"]
    assert await row_counts(db, brand.brand.id) == before
    points = await client.get("/v1/members/anna/points", headers=brand.headers)
    assert points.json()["balance"] == 42


async def test_fifty_concurrent_requests_with_one_event_id(client, brand, rules, db):
    body = event("same-id", "bruno", "purchase", "2026-11-20T09:00:00Z", amount=10)
    responses = await asyncio.gather(*(client.post("/v1/events", json=body, headers=brand.headers) for _ in range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    flags = sorted(r.json()["duplicate"] for r in responses)
    assert flags == [False] + [True] * 49
    assert {r.json()["effects"][0]["points"] for r in responses} == {10}
    async with db.read() as session:
        entries = await session.scalar(
            select(func.count())
            .select_from(LedgerRow)
            .where(LedgerRow.brand_id == brand.brand.id, LedgerRow.event_key == "same-id")
        )
    assert entries == 1
    assert (await row_counts(db, brand.brand.id))["events"] == 1


async def test_concurrent_events_of_one_member_respect_the_daily_cap(client, brand, rules):
    bodies = [event(f"v{i}", "carla", "visit", "2026-11-20T09:00:00Z") for i in range(8)]
    responses = await asyncio.gather(*(client.post("/v1/events", json=b, headers=brand.headers) for b in bodies))
    assert all(r.status_code == 200 for r in responses)
    balance = (await client.get("/v1/members/carla/points", headers=brand.headers)).json()["balance"]
    assert balance == 25


async def test_daily_caps_count_what_earlier_batches_earned_by_member_rule_and_local_day(client, brand, rules):
    # Europe/Rome: 22:30Z on the 20th is still the 20th there, 23:30Z is the 21st.
    first = [
        event("a19-1", "anna", "visit", "2026-11-19T09:00:00Z"),
        event("a19-2", "anna", "visit", "2026-11-19T10:00:00Z"),
        event("a19-3", "anna", "visit", "2026-11-19T11:00:00Z"),
        event("a20-1", "anna", "visit", "2026-11-20T22:30:00Z"),
        event("a21-1", "anna", "visit", "2026-11-20T23:30:00Z"),
        event("a20-p", "anna", "purchase", "2026-11-20T12:00:00Z", amount=40),
        event("b20-1", "bruno", "visit", "2026-11-20T08:00:00Z"),
        event("b20-2", "bruno", "visit", "2026-11-20T09:00:00Z"),
    ]
    second = [
        event("a20-2", "anna", "visit", "2026-11-20T10:00:00Z"),
        event("a20-3", "anna", "visit", "2026-11-20T11:00:00Z"),
        event("a21-2", "anna", "visit", "2026-11-21T10:00:00Z"),
        event("a21-3", "anna", "visit", "2026-11-21T11:00:00Z"),
        event("b20-3", "bruno", "visit", "2026-11-20T10:00:00Z"),
        event("b21-1", "bruno", "visit", "2026-11-21T10:00:00Z"),
    ]
    earned = {}
    for batch in (first, second):
        response = await client.post("/v1/events", json={"events": batch}, headers=brand.headers)
        assert response.status_code == 200, response.text
        for result in response.json()["results"]:
            earned[result["id"]] = sum(e["points"] for e in result["effects"] if e["type"] == "points_awarded")
    assert earned == {
        "a19-1": 10, "a19-2": 10, "a19-3": 5, "a20-1": 10, "a21-1": 10, "a20-p": 40, "b20-1": 10, "b20-2": 10,
        "a20-2": 10, "a20-3": 5, "a21-2": 10, "a21-3": 5, "b20-3": 5, "b21-1": 10,
    }  # fmt: skip


async def test_batch_with_repeats_inside(client, brand, rules):
    batch = {
        "events": [
            event("b1", "dora", "visit", "2026-11-20T09:00:00Z"),
            event("b1", "dora", "visit", "2026-11-20T09:00:00Z"),
            event("b2", "dora", "visit", "2026-11-20T09:05:00Z"),
        ]
    }
    response = await client.post("/v1/events", json=batch, headers=brand.headers)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["duplicate"] for r in results] == [False, True, False]
    assert [r["effects"][0]["points"] for r in results] == [10, 10, 10]


BAD = [
    ("missing field", {"id": "x", "type": "visit", "occurred_at": "2026-11-20T09:00:00Z"}, 422, "$.member"),
    (
        "naive timestamp",
        {"id": "x", "member": "m", "type": "visit", "occurred_at": "2026-11-20T09:00:00"},
        422,
        "$.occurred_at",
    ),
    (
        "wrong type",
        {"id": "x", "member": ["m"], "type": "visit", "occurred_at": "2026-11-20T09:00:00Z"},
        422,
        "$.member",
    ),
    (
        "unknown field",
        {"id": "x", "member": "m", "type": "visit", "occurred_at": "2026-11-20T09:00:00Z", "extra": 1},
        422,
        "$.extra",
    ),
    (
        "one bad event in a batch",
        {
            "events": [event(f"ok{i}", "m", "visit", "2026-11-20T09:00:00Z") for i in range(999)]
            + [{"id": "bad", "member": "m", "type": "visit", "occurred_at": "nope"}]
        },
        422,
        "$.events[999].occurred_at",
    ),
    (
        "1001 events",
        {"events": [event(f"e{i}", "m", "visit", "2026-11-20T09:00:00Z") for i in range(1001)]},
        413,
        "$.events",
    ),
    (
        "number out of range",
        event("x", "m", "purchase", "2026-11-20T09:00:00Z", amount=1e300),
        422,
        "$.properties.amount",
    ),
    (
        "number out of range deep in a batch",
        {
            "events": [
                event("ok", "m", "visit", "2026-11-20T09:00:00Z", basket=[{"qty": 1}]),
                event("x", "m", "visit", "2026-11-20T09:00:00Z", basket=[{"qty": 1}, {"qty": -1e300}]),
            ]
        },
        422,
        "$.events[1].properties.basket[1].qty",
    ),
]


@pytest.mark.parametrize(("name", "payload", "status", "field"), BAD, ids=[b[0] for b in BAD])
async def test_bad_input_is_refused_and_changes_nothing(client, brand, rules, db, name, payload, status, field):
    before = await row_counts(db, brand.brand.id)
    response = await client.post("/v1/events", json=payload, headers=brand.headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status and problem["field"] == field and problem["detail"]
    assert await row_counts(db, brand.brand.id) == before


async def test_two_megabyte_body_is_refused(client, brand, db):
    before = await row_counts(db, brand.brand.id)
    payload = event("big", "m", "visit", "2026-11-20T09:00:00Z", blob="x" * (2 * 1024 * 1024))
    response = await client.post("/v1/events", json=payload, headers=brand.headers)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await row_counts(db, brand.brand.id) == before


async def test_points_over_the_per_event_limit_roll_back_the_batch(client, brand, db, clock):
    await put_rule(
        db,
        brand_id=brand.brand.id,
        spec=EarningRuleSpec(key="buy", event_type="purchase", per_unit=PerUnit(property="amount", points=1000)),
        now=clock.now(),
    )
    before = await row_counts(db, brand.brand.id)
    batch = {
        "events": [
            event("ok", "m", "purchase", "2026-11-20T09:00:00Z", amount=5),
            event("huge", "m", "purchase", "2026-11-20T09:00:00Z", amount=5e9),
        ]
    }
    response = await client.post("/v1/events", json=batch, headers=brand.headers)
    assert response.status_code == 422
    assert response.json()["field"] == "$.events[1].properties.amount"
    assert await row_counts(db, brand.brand.id) == before


async def test_ledger_is_append_only_in_the_database(client, brand, rules, db):
    await client.post("/v1/events", json=event("l1", "m", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers)
    for statement in ("UPDATE ledger SET points = points + 1", "DELETE FROM ledger"):
        with pytest.raises(Exception, match="append-only"):
            async with db.write() as session:
                await session.execute(text(statement + " WHERE brand_id = :b"), {"b": brand.brand.id})
    balance = (await client.get("/v1/members/m/points", headers=brand.headers)).json()["balance"]
    assert balance == 10


async def test_late_event_counts_for_the_day_it_happened(client, brand, rules, clock):
    # 3 visits late on the 18th (Rome) arrive now; the cap applies to the 18th, not today
    bodies = [event(f"late{i}", "ezio", "visit", "2026-11-18T22:30:00Z") for i in range(3)]
    response = await client.post("/v1/events", json={"events": bodies}, headers=brand.headers)
    assert [r["effects"][0]["points"] for r in response.json()["results"]] == [10, 10, 5]
    today = await client.post(
        "/v1/events", json=event("today", "ezio", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers
    )
    assert today.json()["effects"][0]["points"] == 10
    history = (await client.get("/v1/members/ezio/points", headers=brand.headers)).json()
    assert history["balance"] == 35


async def test_a_brand_cannot_touch_another_brands_data(client, brand, rules, db, clock):
    other = await make_brand(db, clock)
    await put_rule(
        db, brand_id=other.brand.id, spec=EarningRuleSpec(key="visit", event_type="visit", points=7), now=clock.now()
    )
    await client.post(
        "/v1/members", json={"external_id": "secret-member", "display_name": "B's member"}, headers=other.headers
    )
    await client.post(
        "/v1/events", json=event("b-ev", "secret-member", "visit", "2026-11-20T09:00:00Z"), headers=other.headers
    )
    other_before = await row_counts(db, other.brand.id)

    # reads of B's member, points, rules through A's key find nothing of B
    assert (await client.get("/v1/members/secret-member", headers=brand.headers)).status_code == 404
    assert (await client.get("/v1/members/secret-member/points", headers=brand.headers)).status_code == 404
    rules_seen = (await client.get("/v1/earning-rules", headers=brand.headers)).json()
    assert {r["key"] for r in rules_seen} == {"visit", "buy"}
    adjust = await client.post(
        "/v1/members/secret-member/points/adjustments", json={"points": 5, "reason": "x"}, headers=brand.headers
    )
    assert adjust.status_code == 404
    # writing with B's event id and member id lands in A only
    write = await client.post(
        "/v1/events", json=event("b-ev", "secret-member", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers
    )
    assert write.json()["duplicate"] is False and write.json()["effects"][0]["points"] == 10
    assert await row_counts(db, other.brand.id) == other_before
    b_view = (await client.get("/v1/members/secret-member", headers=other.headers)).json()
    assert b_view["points"] == 7 and b_view["display_name"] == "B's member"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer sk_live_nope"}, 401), ({"Authorization": "Basic abc"}, 401)],
)
async def test_keys_are_required(client, headers, status):
    response = await client.post("/v1/events", json=event("x", "m", "visit", "2026-11-20T09:00:00Z"), headers=headers)
    assert response.status_code == status
    assert response.json()["type"].endswith("authentication-required")


async def test_publishable_key_cannot_write(client, brand, db):
    before = await row_counts(db, brand.brand.id)
    response = await client.post(
        "/v1/events", json=event("x", "m", "visit", "2026-11-20T09:00:00Z"), headers=brand.public_headers
    )
    assert response.status_code == 403
    assert (await client.get("/v1/members/m", headers=brand.public_headers)).status_code == 403
    assert await row_counts(db, brand.brand.id) == before

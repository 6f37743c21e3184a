"""Velocity limits hold events for review (effects not applied); approve applies once, reject never; audited."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from engine.orm import EventRow
from engine.records import HeldEventRow
from engine.velocity import VelocityLimit, parse_limits
from tests.helpers import event

PROGRAM = {
    "earning_rules": [{"key": "visit", "event_type": "visit", "points": 10}],
    "limits": [
        {"key": "visits-per-hour", "event_type": "visit", "max_events": 2, "per": "hour"},
        {"key": "points-per-day", "max_points": 100, "per": "day"},
    ],
}


async def _balance(client, brand, member: str) -> int:
    answer = await client.get(f"/v1/members/{member}/points", headers=brand.headers)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["balance"])


async def test_events_beyond_a_limit_are_held_and_approved_once(client, brand, db):
    applied = await client.put("/v1/program", json=PROGRAM, headers=brand.headers)
    assert applied.status_code == 200, applied.text
    exported = (await client.get("/v1/program", headers=brand.headers, params={"format": "json"})).json()
    assert [limit["key"] for limit in exported["limits"]] == ["visits-per-hour", "points-per-day"]
    batch = [event(f"v{n}", "ada", "visit", f"2026-11-20T09:0{n}:00Z", shop="roma") for n in range(3)]
    answer = await client.post("/v1/events", json={"events": batch[:2]}, headers=brand.headers)
    assert [r.get("held", False) for r in answer.json()["results"]] == [False, False]
    third = await client.post("/v1/events", json=batch[2], headers=brand.headers)
    assert third.status_code == 200, third.text
    assert third.json()["held"] is True
    assert third.json()["effects"] == []
    assert await _balance(client, brand, "ada") == 20
    resent = await client.post("/v1/events", json=batch[2], headers=brand.headers)
    assert resent.json()["held"] is True and resent.json()["duplicate"] is True
    async with db.read() as session:
        logged = await session.scalar(
            select(func.count()).select_from(EventRow).where(EventRow.brand_id == brand.brand.id)
        )
        assert logged == 2
    queue = (await client.get("/v1/review", headers=brand.headers)).json()
    assert queue["pending"] == 1
    (held,) = queue["events"]
    assert held["event_id"] == "v2" and held["status"] == "pending_review"
    assert held["properties"] == {"shop": "roma"}
    assert "visits-per-hour" in held["reason"]
    # two reviewers approve at once: applied exactly once
    first, second = await asyncio.gather(
        client.post(f"/v1/review/{held['id']}/approve", headers=brand.headers),
        client.post(f"/v1/review/{held['id']}/approve", headers=brand.headers),
    )
    assert {first.status_code, second.status_code} == {200}
    assert sorted([first.json()["duplicate"], second.json()["duplicate"]]) == [False, True]
    assert await _balance(client, brand, "ada") == 30
    again = await client.post(f"/v1/review/{held['id']}/approve", headers=brand.headers)
    assert again.json()["duplicate"] is True
    assert await _balance(client, brand, "ada") == 30
    assert (await client.post(f"/v1/review/{held['id']}/reject", headers=brand.headers)).status_code == 409
    assert (await client.get("/v1/review", headers=brand.headers)).json()["pending"] == 0
    audit = (await client.get("/v1/audit", headers=brand.headers, params={"action": "review."})).json()
    assert [e["action"] for e in audit["entries"]] == ["review.approved"]
    assert audit["entries"][0]["actor"].startswith("key:sk_")


async def test_points_limit_and_rejection(client, brand, db):
    program = {**PROGRAM, "limits": [{"key": "points-per-day", "max_points": 25, "per": "day"}]}
    assert (await client.put("/v1/program", json=program, headers=brand.headers)).status_code == 200
    batch = [event(f"p{n}", "bea", "visit", f"2026-11-20T09:0{n}:00Z") for n in range(4)]
    results = (await client.post("/v1/events", json={"events": batch}, headers=brand.headers)).json()["results"]
    assert [r.get("held", False) for r in results] == [False, False, True, True]
    assert await _balance(client, brand, "bea") == 20
    queue = (await client.get("/v1/review", headers=brand.headers)).json()
    assert [e["event_id"] for e in queue["events"]] == ["p2", "p3"]
    rejected = await client.post(f"/v1/review/{queue['events'][0]['id']}/reject", headers=brand.headers)
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert (
        await client.post(f"/v1/review/{queue['events'][0]['id']}/approve", headers=brand.headers)
    ).status_code == 409
    assert await _balance(client, brand, "bea") == 20
    async with db.read() as session:
        statuses = sorted(
            (await session.scalars(select(HeldEventRow.status).where(HeldEventRow.brand_id == brand.brand.id))).all()
        )
    assert statuses == ["pending_review", "rejected"]
    other = await client.post("/v1/review/999999999/approve", headers=brand.headers)
    assert other.status_code == 404


async def test_velocity_counts_many_members_in_one_statement(client, brand, db):
    from sqlalchemy import event as sa_event

    assert (await client.put("/v1/program", json=PROGRAM, headers=brand.headers)).status_code == 200
    statements: list[str] = []
    engine = db.engine.sync_engine

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    from engine.velocity import counted

    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        async with db.read() as session:
            limits = parse_limits(PROGRAM["limits"])
            from engine.clock import SystemClock

            found = await counted(
                session,
                brand_id=brand.brand.id,
                member_ids=list(range(1, 1200)),
                limits=limits,
                now=SystemClock().now(),
            )
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    assert found == {}
    assert len([s for s in statements if "event_log" in s]) == 1


def test_limits_are_validated_by_path():
    import pytest

    from engine.errors import DefinitionError

    assert parse_limits([{"key": "a", "per": "day", "max_events": 3}]) == (
        VelocityLimit(key="a", per="day", max_events=3),
    )
    for bad, path in (
        ([{"key": "a", "per": "day"}], "$.limits[0]"),
        ([{"key": "a", "per": "day", "max_events": 1, "max_points": 2}], "$.limits[0]"),
        ([{"key": "a", "per": "week", "max_events": 1}], "$.limits"),
        (
            [{"key": "a", "per": "day", "max_events": 1}, {"key": "a", "per": "hour", "max_events": 1}],
            "$.limits[1].key",
        ),
    ):
        with pytest.raises(DefinitionError) as caught:
            parse_limits(bad)
        assert caught.value.field == path

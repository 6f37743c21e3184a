"""Export covers every domain (JSON and HTML); erasure leaves the member's identifiers nowhere in SQL or Redis."""

from __future__ import annotations

import importlib
import json
import uuid
from typing import Any

from sqlalchemy import select

from engine.db import Base
from engine.schema import TABLE_MODULES
from tests.helpers import event

PROGRAM = {
    "earning_rules": [{"key": "visit", "event_type": "visit", "points": 10}],
    "badges": [{"key": "first-visit", "name": "First visit", "rule": {"event_type": "visit", "count": 1}}],
    "leaderboards": [{"key": "weekly", "title": "Weekly", "metric": {"kind": "points"}, "period": "weekly"}],
    "limits": [{"key": "visits", "event_type": "visit", "max_events": 2, "per": "hour"}],  # the third is held
}


class Person:
    """Identifiers unique to one test: the erasure test searches the whole database, other tests' rows too."""

    def __init__(self) -> None:
        run = uuid.uuid4().hex[:8]
        self.external_id = f"zq-erase-{run}"
        self.name = f"Zelda Quixotic {run}"
        self.email = f"zelda.{run}@example.org"


async def _member_with_history(client, brand, person: Person) -> None:
    EXTERNAL_ID, NAME, EMAIL = person.external_id, person.name, person.email
    assert (await client.put("/v1/program", json=PROGRAM, headers=brand.headers)).status_code == 200
    enrolled = await client.post(
        "/v1/members",
        json={"external_id": EXTERNAL_ID, "display_name": NAME, "attributes": {"email": EMAIL, "store": "roma"}},
        headers=brand.headers,
    )
    assert enrolled.status_code == 201, enrolled.text
    for n in range(3):
        sent = await client.post(
            "/v1/events",
            json=event(f"pv-{n}", EXTERNAL_ID, "visit", f"2026-11-20T0{n + 1}:00:00Z", email=EMAIL, note=NAME),
            headers=brand.headers,
        )
        assert sent.status_code == 200, sent.text
    preference = await client.put(
        f"/v1/leaderboard-preferences/{EXTERNAL_ID}", json={"display": "full_name"}, headers=brand.headers
    )
    assert preference.status_code == 200, preference.text
    adjusted = await client.post(
        f"/v1/members/{EXTERNAL_ID}/points/adjustments", json={"points": 5, "reason": "goodwill"}, headers=brand.headers
    )
    assert adjusted.status_code == 201, adjusted.text


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


async def _database_mentions(db, needles: list[str]) -> list[str]:
    for module in TABLE_MODULES:  # every table of every domain
        importlib.import_module(module)
    found: list[str] = []
    async with db.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in await session.execute(select(table)):
                for column, value in zip(table.columns, row, strict=True):
                    text = _text(value)
                    found += [f"{table.name}.{column.name}: {n}" for n in needles if n in text]
    return found


async def _redis_mentions(redis, namespace: str, needles: list[str]) -> list[str]:
    found: list[str] = []
    async for raw_key in redis.scan_iter(match=f"{namespace}*", count=1000):
        key = _text(raw_key)
        kind = _text(await redis.type(raw_key))
        if kind == "string":
            values: Any = [await redis.get(raw_key)]
        elif kind == "hash":
            values = [x for pair in (await redis.hgetall(raw_key)).items() for x in pair]
        elif kind == "zset":
            values = [m for m, _ in await redis.zrange(raw_key, 0, -1, withscores=True)]
        elif kind == "set":
            values = list(await redis.smembers(raw_key))
        elif kind == "list":
            values = await redis.lrange(raw_key, 0, -1)
        else:
            values = []
        text = key + "\n" + "\n".join(_text(v) for v in values)
        found += [f"redis {key}: {n}" for n in needles if n in text]
    return found


async def test_export_covers_every_domain(client, brand):
    person = Person()
    EXTERNAL_ID, NAME = person.external_id, person.name
    await _member_with_history(client, brand, person)
    answer = await client.get(f"/v1/members/{EXTERNAL_ID}/export", headers=brand.headers)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["member"]["display_name"] == NAME
    sections = data["sections"]
    for name in ("challenges", "points", "badges", "leaderboards", "rewards", "review"):
        assert name in sections, sorted(sections)
    assert [lot["points"] for lot in sections["points"]["lots"]] == [10, 10, 5]
    assert [h["event_id"] for h in sections["review"]["held_events"]] == ["pv-2"]
    assert [b["badge"] for b in sections["badges"]["awards"]] == ["first-visit"]
    assert sections["leaderboards"]["preference"]["display"] == "full_name"
    assert any(t["board"] == "weekly" for t in sections["leaderboards"]["totals"])
    assert sections["rewards"]["redemptions"] == []
    page = await client.get(f"/v1/members/{EXTERNAL_ID}/export", params={"format": "html"}, headers=brand.headers)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert NAME in page.text and "first-visit" in page.text


async def test_erasure_leaves_no_identifier_in_sql_or_redis(client, brand, db, redis, backend, redis_namespace):
    person = Person()
    await _member_with_history(client, brand, person)
    needles = [person.external_id, person.name, person.email]
    assert await _database_mentions(db, needles), "the search must see the member before erasure"
    erased = await client.delete(f"/v1/members/{person.external_id}", headers=brand.headers)
    assert erased.status_code == 204, erased.text
    left = await _database_mentions(db, needles)
    assert left == [], "\n".join(left)
    if backend.endswith("fakeredis"):
        assert await _redis_mentions(redis, redis_namespace, needles) == []
    else:
        from redis.asyncio import Redis

        from tests.conftest import REDIS_URL

        real = Redis.from_url(REDIS_URL)
        try:
            assert await _redis_mentions(real, redis_namespace, needles) == []
        finally:
            await real.aclose()
    audit = (await client.get("/v1/audit", headers=brand.headers, params={"action": "member."})).json()
    assert [e["action"] for e in audit["entries"]] == ["member.erased"]

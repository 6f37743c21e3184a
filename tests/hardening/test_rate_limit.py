"""API rate limiting per key: a Redis token bucket, 429 with RateLimit headers, per-brand settings, fail open."""

from __future__ import annotations

import asyncio
import logging
import math

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import update

from engine.orm import BrandRow
from engine.settings import load_settings
from engine.tenants import Brand
from tests.helpers import make_brand
from web.ratelimit import Limit, TokenBuckets, Verdict, limit_for


async def _limit(db, brand, **limit: float) -> None:
    async with db.write() as session:
        await session.execute(
            update(BrandRow).where(BrandRow.id == brand.brand.id).values(settings={"rate_limit": limit})
        )


async def test_a_key_beyond_its_burst_gets_429_with_the_ietf_headers(client, brand, db):
    await _limit(db, brand, rate=0.01, burst=3)
    answers = [await client.get("/v1/members/nobody/points", headers=brand.headers) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] != [429] * 3
    for number, answer in enumerate(answers[:3]):
        assert answer.headers["RateLimit-Policy"] == '"api";q=3;w=300'
        assert answer.headers["RateLimit"].startswith(f'"api";r={2 - number};t=')
    refused = answers[3]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/rate-limited")
    assert refused.headers["RateLimit"].startswith('"api";r=0;')
    assert 90 <= int(refused.headers["Retry-After"]) <= 100


async def test_buckets_are_per_key_and_brands_without_a_setting_use_the_default(client, brand, db, clock):
    await _limit(db, brand, rate=0.01, burst=1)
    other = await make_brand(db, clock)
    assert (await client.get("/v1/leaderboards", headers=brand.headers)).status_code == 200
    assert (await client.get("/v1/leaderboards", headers=brand.headers)).status_code == 429
    fresh = await client.get("/v1/leaderboards", headers=other.headers)
    assert fresh.status_code == 200
    assert fresh.headers["RateLimit-Policy"] == '"api";q=1000;w=10'
    # the brand's other key (publishable) has its own bucket
    assert (await client.get(f"/widgets/v1/leaderboards?key={brand.publishable}")).status_code != 429


async def test_requests_without_a_key_are_not_counted(client, brand, db):
    await _limit(db, brand, rate=0.01, burst=1)
    for _ in range(3):
        answer = await client.get("/v1/leaderboards")
        assert answer.status_code == 401
        assert "RateLimit" not in answer.headers


async def test_redis_down_fails_open_and_logs(client, brand, db, monkeypatch, caplog):
    await _limit(db, brand, rate=0.01, burst=1)

    async def down(self, bucket, limit):
        raise RedisConnectionError("connection refused")

    monkeypatch.setattr(TokenBuckets, "take_from", down)
    with caplog.at_level(logging.WARNING, logger="questline.ratelimit"):
        answers = [await client.get("/v1/leaderboards", headers=brand.headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "RateLimit" not in answers[0].headers
    assert any("failing open" in r.getMessage() for r in caplog.records)


async def test_the_bucket_script_refills_at_the_rate(redis, redis_namespace):
    buckets = TokenBuckets(redis, namespace=redis_namespace)
    limit = Limit(rate=1000.0, burst=2)
    first = [await buckets.take(1, 99, limit) for _ in range(2)]
    assert all(v.allowed for v in first)
    assert first[1].remaining < 1.5


async def test_takes_of_one_turn_share_a_round_trip_and_each_gets_its_own_verdict(redis, redis_namespace, monkeypatch):
    buckets = TokenBuckets(redis, namespace=redis_namespace)
    limit = Limit(rate=0.001, burst=3)
    executed: list[int] = []
    pipeline_class = type(redis.pipeline())
    execute = pipeline_class.execute

    async def counted(self, *args, **kwargs):
        executed.append(len(self.command_stack))
        return await execute(self, *args, **kwargs)

    await buckets.take(9, 9, limit)  # loads the script (a first pipeline would find it missing, then load it)
    monkeypatch.setattr(pipeline_class, "execute", counted)
    verdicts = await asyncio.gather(*(buckets.take(1, 7, limit) for _ in range(5)))
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]  # in the order asked
    assert [math.floor(v.remaining) for v in verdicts] == [2, 1, 0, 0, 0]
    assert executed == [5]  # one pipeline of five script calls
    other = await asyncio.gather(buckets.take(1, 8, limit), buckets.take(2, 7, limit))
    assert all(v.allowed for v in other)  # other keys' buckets are their own


async def test_takes_together_survive_a_flushed_script_cache(redis, redis_namespace):
    buckets = TokenBuckets(redis, namespace=redis_namespace)
    await buckets.take(1, 11, Limit(rate=100.0, burst=10))
    await redis.script_flush()
    verdicts = await asyncio.gather(*(buckets.take(1, 11, Limit(rate=100.0, burst=10)) for _ in range(4)))
    assert all(v.allowed for v in verdicts)


def test_verdict_headers_and_brand_settings():
    refused = Verdict(allowed=False, limit=Limit(rate=2.0, burst=10), remaining=0.0)
    assert refused.headers() == {
        "RateLimit-Policy": '"api";q=10;w=5',
        "RateLimit": '"api";r=0;t=5',
        "Retry-After": "1",
    }
    settings = load_settings({"QUESTLINE_RATE_LIMIT": "5", "QUESTLINE_RATE_LIMIT_BURST": "50"})
    plain = Brand(id=1, slug="a", name="a", timezone="UTC")  # type: ignore[arg-type]
    assert limit_for(settings, plain) == Limit(rate=5.0, burst=50)
    own = Brand(id=1, slug="a", name="a", timezone="UTC", settings={"rate_limit": {"burst": 7}})  # type: ignore[arg-type]
    assert limit_for(settings, own) == Limit(rate=5.0, burst=7)
    bad = Brand(id=1, slug="a", name="a", timezone="UTC", settings={"rate_limit": {"rate": "x"}})  # type: ignore[arg-type]
    assert limit_for(settings, bad) == Limit(rate=5.0, burst=50)


@pytest.fixture(autouse=True)
def _quiet():
    return

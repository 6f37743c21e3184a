"""The board-read lane (web/api/board_reads.py): the same answers as the route, faster, and only for plain reads."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import delete, update

from engine.orm import BrandRow
from leaderboards import store
from leaderboards.orm import BoardRow
from leaderboards.script_batch import ScriptBatch
from tests.helpers import event, make_brand
from web.api import board_reads
from web.ratelimit import TokenBuckets


@pytest.fixture
async def brand(db, clock):
    """A fresh brand whose key refills at 0.01 token/s (burst 1000, as the default): a test can count its tokens.

    At the default 100/s a slow machine refilled one between two reads, and a read's take was not seen.
    """
    fresh = await make_brand(db, clock)
    async with db.write() as session:
        await session.execute(
            update(BrandRow)
            .where(BrandRow.id == fresh.brand.id)
            .values(settings={"rate_limit": {"rate": 0.01, "burst": 1000}})
        )
    return fresh


@pytest.fixture
async def board(client, brand, db, clock):
    spec = {"key": "visits", "title": "Visits", "metric": {"kind": "event_count", "event_type": "visit"}}
    response = await client.put("/v1/leaderboards/visits", json=spec, headers=brand.headers)
    assert response.status_code in (200, 201), response.text
    at = clock.now().isoformat()
    batch = [event(f"v{n}-{i}", f"m{n}", "visit", at) for n in range(12) for i in range(n % 4 + 1)]
    response = await client.post("/v1/events", json={"events": batch}, headers=brand.headers)
    assert response.status_code == 200, response.text
    yield "/v1/leaderboards/visits"
    async with db.write() as session:
        await session.execute(delete(BoardRow).where(BoardRow.brand_id == brand.brand.id))


@pytest.fixture
def lean(monkeypatch) -> list[int]:
    """How many answers the lean path encoded (the route encodes its own)."""
    served: list[int] = []
    encoder = board_reads._ENCODER

    class Counting:
        def encode(self, value: Any) -> bytes:
            body = encoder.encode(value)
            served.append(len(body))
            return body

    monkeypatch.setattr(board_reads, "_ENCODER", Counting())
    return served


READS = [
    "",
    "?limit=3",
    "?limit=5&offset=2",
    "?around=m7&k=2",
    "?around=m0&k=0&limit=1",
    "?members=m1,%20m3%20,m11&around=m5",
    "?period=current&around=m2",
    "?around=m3&members=m4",
]


@pytest.mark.parametrize("query", READS)
async def test_a_plain_read_is_answered_by_the_lean_path_exactly_as_the_route_answers_it(
    client, brand, board, lean, query
):
    joiner = "&" if query else "?"
    origin = {"Origin": "https://shop.example"}
    fast = await client.get(board + query, headers={**brand.headers, **origin})
    assert fast.status_code == 200, fast.text
    assert len(lean) == 1
    # An unknown parameter sends the same read through the route, which ignores it.
    routed = await client.get(board + query + joiner + "utm=x", headers={**brand.headers, **origin})
    assert routed.status_code == 200, routed.text
    assert len(lean) == 1
    assert fast.content == routed.content
    assert fast.json()["entries"], fast.text
    assert _headers(fast) == _headers(routed)  # every header the stack adds (CORS, security, rate limit) and no other
    assert _remaining(routed) == _remaining(fast) - 1


def _headers(answer: Any) -> dict[str, str]:
    """An answer's headers, without the tokens left (which the next request changes)."""
    found = {name.lower(): value for name, value in answer.headers.multi_items()}
    assert len(found) == len(answer.headers.multi_items()), answer.headers  # no header twice
    found["ratelimit"] = found["ratelimit"].split(";r=")[0]
    return found


async def test_a_publishable_key_in_the_query_reads_public_boards_through_the_lean_path(client, brand, board, lean):
    fast = await client.get(f"{board}?key={brand.publishable}&around=m4")
    routed = await client.get(board + "?around=m4&utm=x", headers=brand.public_headers)
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content
    assert len(lean) == 1


BAD = [
    ("?limit=0", 422),
    ("?limit=101", 422),
    ("?limit=ten", 422),
    ("?limit=1&limit=2", 422),
    ("?offset=-1", 422),
    ("?k=26", 422),
    ("?around=", 200),
    ("?around=nobody", 404),
    ("?around=m1%00", 422),
    ("?period=2026-13", 422),
    ("?period=" + "x" * 17, 422),
    ("?limit=99999999999999999999999", 422),
    ("?members=" + ",".join(f"m{n}" for n in range(101)), 422),
    ("?around=%ff", 404),
]


@pytest.mark.parametrize(("query", "status"), BAD)
async def test_what_the_lean_path_is_not_sure_of_goes_to_the_route(client, brand, board, lean, query, status):
    answer = await client.get(board + query, headers=brand.headers)
    assert answer.status_code == status, answer.text
    if status >= 400:
        assert answer.headers["content-type"] == "application/problem+json"
    assert lean == []


@pytest.mark.parametrize(
    ("path", "headers_of", "status"),
    [
        ("/v1/leaderboards/visits", lambda b: {}, 401),
        ("/v1/leaderboards/visits", lambda b: {"Authorization": "Bearer sk_live_wrong"}, 401),
        ("/v1/leaderboards/visits?key={secret}", lambda b: {}, 401),
        ("/v1/leaderboards/visits?key={secret}", lambda b: b.headers, 401),  # in the URL too: refused
        ("/v1/leaderboards/visits", lambda b: {"Authorization": "Basic eDp5"}, 401),
        ("/v1/leaderboards/nosuchboard", lambda b: b.headers, 404),
    ],
)
async def test_keys_and_unknown_boards_get_the_routes_problems(client, brand, board, lean, path, headers_of, status):
    answer = await client.get(path.format(secret=brand.secret), headers=headers_of(brand))
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert lean == []


async def test_the_rate_limit_still_applies_to_lean_reads(client, db, clock, lean):
    other = await make_brand(db, clock)  # its key is not cached yet: the limit below is what it gets
    async with db.write() as session:
        await session.execute(
            update(BrandRow)
            .where(BrandRow.id == other.brand.id)
            .values(settings={"rate_limit": {"rate": 0.01, "burst": 3}})
        )
    spec = {"key": "visits", "title": "Visits", "metric": {"kind": "event_count", "event_type": "visit"}}
    assert (await client.put("/v1/leaderboards/visits", json=spec, headers=other.headers)).status_code in (200, 201)
    answers = [await client.get("/v1/leaderboards/visits", headers=other.headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[1].headers["RateLimit"].startswith('"api";r=0;')
    assert answers[2].headers["content-type"] == "application/problem+json"
    assert len(lean) == 2
    async with db.write() as session:
        await session.execute(delete(BoardRow).where(BoardRow.brand_id == other.brand.id))


async def _limited_brand(db, clock, client, *, burst: int) -> Any:
    """A brand whose key gets ``burst`` requests (refilled at 0.01/s) and a board; its key is not cached yet."""
    other = await make_brand(db, clock)
    async with db.write() as session:
        await session.execute(
            update(BrandRow)
            .where(BrandRow.id == other.brand.id)
            .values(settings={"rate_limit": {"rate": 0.01, "burst": burst}})
        )
    spec = {"key": "visits", "title": "Visits", "metric": {"kind": "event_count", "event_type": "visit"}}
    assert (await client.put("/v1/leaderboards/visits", json=spec, headers=other.headers)).status_code in (200, 201)
    return other


def _remaining(answer: Any) -> int:
    return int(answer.headers["RateLimit"].split(";r=")[1].split(";")[0])


@pytest.mark.redis_cluster
async def test_a_lean_read_takes_its_token_in_the_read_script_and_a_refused_one_reads_nothing(
    client, db, clock, lean, monkeypatch
):
    other = await _limited_brand(db, clock, client, burst=5)  # the PUT took one token
    takes: list[str] = []
    take_from = TokenBuckets.take_from

    async def counted(self, bucket, limit):
        takes.append(bucket)
        return await take_from(self, bucket, limit)

    monkeypatch.setattr(TokenBuckets, "take_from", counted)
    decoded: list[int] = []
    decode_read = store.decode_read

    def decoding(*args: Any, **kwargs: Any) -> Any:
        decoded.append(1)
        return decode_read(*args, **kwargs)

    monkeypatch.setattr(store, "decode_read", decoding)
    board = "/v1/leaderboards/visits"
    first, second = [await client.get(board, headers=other.headers) for _ in range(2)]
    assert [first.status_code, second.status_code] == [200, 200]
    assert [_remaining(first), _remaining(second)] == [3, 2]
    assert takes == []  # one script call each: the token and the read
    assert len(decoded) == 2
    assert len(lean) == 2
    routed = await client.get(board + "?utm=x", headers=other.headers)  # the route: its token taken on its own
    assert routed.status_code == 200
    assert _remaining(routed) == 1
    assert len(takes) == 1
    last = await client.get(board, headers=other.headers)
    assert _remaining(last) == 0
    refused = await client.get(board, headers=other.headers)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert _remaining(refused) == 0
    assert len(takes) == 1  # refused by the read script itself…
    assert len(decoded) == 4  # …which read nothing (the route read decodes through the same function)
    async with db.write() as session:
        await session.execute(delete(BoardRow).where(BoardRow.brand_id == other.brand.id))


async def test_a_lean_read_with_redis_down_is_answered_from_sql_and_fails_open(
    client, db, clock, lean, monkeypatch, caplog
):
    other = await _limited_brand(db, clock, client, burst=1)  # the PUT took the only token

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise RedisConnectionError("connection refused")

    monkeypatch.setattr(ScriptBatch, "__call__", down)
    monkeypatch.setattr(TokenBuckets, "take_from", down)
    with caplog.at_level(logging.WARNING, logger="questline.ratelimit"):
        answers = [await client.get("/v1/leaderboards/visits", headers=other.headers) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.json()["source"] for a in answers] == ["sql", "sql"]
    assert "RateLimit" not in answers[0].headers
    assert any("failing open" in r.getMessage() for r in caplog.records)
    assert len(lean) == 2
    async with db.write() as session:
        await session.execute(delete(BoardRow).where(BoardRow.brand_id == other.brand.id))


def _board_reads_counted() -> float:
    from web.http_metrics import flush_pending
    from web.metrics import registry

    flush_pending()  # as the scrape does
    return sum(
        sample.value
        for family in registry().collect()
        if family.name == "questline_http_requests"
        for sample in family.samples
        if sample.name.endswith("_total")
        and sample.labels.get("path", "").startswith("/v1/leaderboards/{key")
        and sample.labels.get("method") == "GET"
        and sample.labels.get("status_code") == "200"
    )


async def test_lean_reads_are_counted_in_the_http_metrics(client, brand, board, lean):
    before = _board_reads_counted()
    for _ in range(3):
        assert (await client.get(board, headers=brand.headers)).status_code == 200
    assert _board_reads_counted() - before == 3
    assert len(lean) == 3


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_a_lane_read_is_logged_like_any_request_with_its_trace_id(client, brand, board, lean, caplog):
    with caplog.at_level(logging.INFO, logger="questline.access"):
        fast = await client.get(board + "?around=m3", headers={**brand.headers, "traceparent": TRACEPARENT})
        routed = await client.get(board + "?around=m3&utm=x", headers={**brand.headers, "traceparent": TRACEPARENT})
    assert fast.status_code == routed.status_code == 200
    assert len(lean) == 1
    lines = [r.msg for r in caplog.records if r.name == "questline.access"]
    assert len(lines) == 2, lines
    fields = [{k: v for k, v in line.items() if k not in ("ms", "timestamp")} for line in lines]  # type: ignore[union-attr]
    assert fields[0] == {**fields[1], "path": board}  # the path without its query, as the stack logs it
    assert fields[0]["status"] == 200 and fields[0]["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_a_failure_in_the_lane_is_handed_to_the_route_with_its_token(client, db, clock, lean, monkeypatch):
    from leaderboards.service import Leaderboards

    other = await _limited_brand(db, clock, client, burst=3)  # the PUT took one token
    read = Leaderboards.read
    calls: list[bool] = []

    async def failing_once(self, *args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("charge") is not None)
        if len(calls) == 1:
            await read(self, *args, **kwargs)  # the lane's read takes its token, then fails
            raise RuntimeError("a failure after the read")
        return await read(self, *args, **kwargs)

    monkeypatch.setattr(Leaderboards, "read", failing_once)
    answer = await client.get("/v1/leaderboards/visits", headers=other.headers)
    assert answer.status_code == 200, answer.text
    assert calls == [True, False]  # the lane's read, then the route's
    assert lean == []  # the route answered
    assert _remaining(answer) == 1  # one token for the request, not two
    async with db.write() as session:
        await session.execute(delete(BoardRow).where(BoardRow.brand_id == other.brand.id))


async def test_an_error_the_route_meets_too_is_answered_as_the_stack_answers_it(
    client, brand, board, lean, monkeypatch
):
    from leaderboards.service import Leaderboards

    async def broken(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database is gone")

    monkeypatch.setattr(Leaderboards, "read", broken)
    answer = await client.get(board, headers=brand.headers)
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["cache-control"] == "no-store"
    assert lean == []


def test_the_lane_stands_in_front_of_the_stack_unless_requests_are_traced(settings):
    from opentelemetry.sdk.trace import TracerProvider

    from web.app import create_app

    assert isinstance(create_app(settings).asgi_handler, board_reads.BoardReadLane)
    traced = create_app(settings, tracer_provider=TracerProvider())
    assert not isinstance(traced.asgi_handler, board_reads.BoardReadLane)  # every request gets its span

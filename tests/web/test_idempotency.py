"""The Idempotency-Key header on the JSON API's POSTs: replay, mismatch, in flight, concurrency."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine.orm import LedgerRow
from web.idempotency import parse_key


async def ledger_rows(db, brand) -> int:
    async with db.read() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(LedgerRow).where(LedgerRow.brand_id == brand.brand.id)
            )
            or 0
        )


@pytest.fixture
async def member(client, brand):
    answer = await client.post("/v1/members", json={"external_id": "anna"}, headers=brand.headers)
    assert answer.status_code == 201


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ('"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ("abc", "abc"),
        ('"a\\"b"', 'a"b'),
        ("", None),
        ("x" * 256, None),
        ("é", None),
    ],
)
def test_parse_key(raw, key):
    assert parse_key(raw) == key


async def test_same_key_same_body_replays_the_first_response(client, brand, member, db):
    headers = {**brand.headers, "Idempotency-Key": '"adj-1"'}
    body = {"points": 50, "reason": "goodwill"}
    first = await client.post("/v1/members/anna/points/adjustments", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    second = await client.post("/v1/members/anna/points/adjustments", json=body, headers=headers)
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["content-type"] == first.headers["content-type"]
    assert await ledger_rows(db, brand) == 1


async def test_same_key_other_body_is_422_and_changes_nothing(client, brand, member, db):
    headers = {**brand.headers, "Idempotency-Key": "adj-2"}
    assert (
        await client.post("/v1/members/anna/points/adjustments", json={"points": 5, "reason": "a"}, headers=headers)
    ).status_code == 201
    other = await client.post(
        "/v1/members/anna/points/adjustments", json={"points": 500, "reason": "a"}, headers=headers
    )
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["type"].endswith("idempotency-key-reused")
    assert await ledger_rows(db, brand) == 1


async def test_keys_are_scoped_by_brand_and_path_and_expire(client, brand, member, db, clock):
    from tests.helpers import make_brand

    headers = {**brand.headers, "Idempotency-Key": "k"}
    assert (
        await client.post("/v1/members/anna/points/adjustments", json={"points": 5, "reason": "a"}, headers=headers)
    ).status_code == 201
    enrol = await client.post("/v1/members", json={"external_id": "bo"}, headers=headers)
    assert enrol.status_code == 201 and "idempotent-replayed" not in enrol.headers
    other = await make_brand(db, clock)
    answer = await client.post(
        "/v1/members", json={"external_id": "bo"}, headers={**other.headers, "Idempotency-Key": "k"}
    )
    assert answer.status_code == 201 and "idempotent-replayed" not in answer.headers
    clock.advance(timedelta(hours=24, seconds=1))
    again = await client.post("/v1/members/anna/points/adjustments", json={"points": 5, "reason": "a"}, headers=headers)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert await ledger_rows(db, brand) == 2


async def test_bad_key_is_400_and_unauthenticated_requests_are_left_to_the_handler(client, brand, member):
    bad = await client.post(
        "/v1/members", json={"external_id": "x"}, headers={**brand.headers, "Idempotency-Key": "x" * 300}
    )
    assert bad.status_code == 400
    anonymous = await client.post("/v1/members", json={"external_id": "x"}, headers={"Idempotency-Key": "k"})
    assert anonymous.status_code == 401


async def test_failed_validation_is_stored_and_replayed(client, brand, member):
    headers = {**brand.headers, "Idempotency-Key": "bad-body"}
    first = await client.post("/v1/members/anna/points/adjustments", json={"points": "many"}, headers=headers)
    assert first.status_code in (400, 422)
    second = await client.post("/v1/members/anna/points/adjustments", json={"points": "many"}, headers=headers)
    assert second.status_code == first.status_code and second.headers["idempotent-replayed"] == "true"


async def test_two_identical_concurrent_requests_execute_once(client, brand, member, db):
    headers = {**brand.headers, "Idempotency-Key": "race"}
    body = {"points": 7, "reason": "race"}
    answers = await asyncio.gather(
        *(client.post("/v1/members/anna/points/adjustments", json=body, headers=headers) for _ in range(2))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([201, 201], [201, 409]), statuses
    executed = [a for a in answers if a.status_code == 201 and "idempotent-replayed" not in a.headers]
    assert len(executed) == 1
    assert await ledger_rows(db, brand) == 1


async def test_in_flight_key_answers_409(client, brand, member, db, clock):
    from integrations import idempotency as store

    scope = store.Scope(brand_id=brand.brand.id, key="busy", method="POST", path="/v1/members")
    assert isinstance(await store.claim(db, scope, fingerprint="f", now=clock.now()), store.Claimed)
    answer = await client.post(
        "/v1/members", json={"external_id": "z"}, headers={**brand.headers, "Idempotency-Key": "busy"}
    )
    assert answer.status_code == 422  # another body: the mismatch is reported first
    import hashlib

    body = b'{"external_id":"z"}'
    scope2 = store.Scope(brand_id=brand.brand.id, key="busy2", method="POST", path="/v1/members")
    await store.claim(db, scope2, fingerprint=hashlib.sha256(body).hexdigest(), now=clock.now())
    answer = await client.post(
        "/v1/members",
        content=body,
        headers={**brand.headers, "Idempotency-Key": "busy2", "Content-Type": "application/json"},
    )
    assert answer.status_code == 409
    assert answer.json()["type"].endswith("idempotency-key-in-flight")

"""Round trips of one new single event on PostgreSQL and Redis (the hot path's floor, issue "Performance")."""

from __future__ import annotations

import re
from typing import Any

import pytest
from redis.asyncio.connection import AbstractConnection
from sqlalchemy import event as sa_event

from leaderboards.orm import BoardRow
from tests.helpers import event, settle

ROW_LOCK = re.compile(r"\bFOR (NO KEY )?UPDATE\b")
"""A row lock in a statement: the member lock is ``FOR NO KEY UPDATE`` (engine.members)."""

PROGRAM = {
    "earning_rules": [{"key": "visit", "event_type": "visit", "points": 5}],
    "campaigns": [{"key": "always", "title": "Always"}],
    "challenges": [
        {
            "key": "three",
            "campaign": "always",
            "title": "Three",
            "rule": {"type": "count", "event_type": "visit", "target": 3},
        }
    ],
}


@pytest.fixture
async def program(client, brand, db):
    response = await client.put("/v1/program", json=PROGRAM, headers=brand.headers, params={"mode": "apply"})
    assert response.status_code == 200, response.text
    board = {"key": "visits", "title": "Visits", "metric": {"kind": "event_count", "event_type": "visit"}}
    response = await client.put("/v1/leaderboards/visits", json=board, headers=brand.headers)
    assert response.status_code in (200, 201), response.text
    yield
    from sqlalchemy import delete

    async with db.write() as session:
        await session.execute(delete(BoardRow).where(BoardRow.brand_id == brand.brand.id))


class Counter:
    """PostgreSQL statements (every cursor execute) and Redis round trips (every packed-command write)."""

    def __init__(self) -> None:
        self.sql: list[str] = []
        self.redis: list[str] = []

    def statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.sql.append(" ".join(statement.split()))


async def test_one_new_single_event_round_trips(client, brand, program, backend, monkeypatch):
    if not backend.startswith("postgres"):
        pytest.skip("round trips are counted on PostgreSQL and Redis")
    services = client.app.state.services
    counter = Counter()
    send = AbstractConnection.send_packed_command

    async def counted(self: Any, command: Any, check_health: bool = True) -> None:
        counter.redis.append(repr(command))
        await send(self, command, check_health)

    headers = brand.headers
    warm = await client.post("/v1/events", json=event("warm", "anna", "visit", "2026-11-20T09:00:00Z"), headers=headers)
    assert warm.status_code == 200, warm.text
    await settle(client)
    engines = [engine.sync_engine for engine in services.db.engines]  # the units' pool too (Database.unit)
    assert len(engines) == 2
    begins: list[object] = []

    def began(conn: Any) -> None:
        begins.append(conn.get_execution_options().get("isolation_level"))

    for engine in engines:
        sa_event.listen(engine, "before_cursor_execute", counter.statement)
        sa_event.listen(engine, "begin", began)
    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    try:
        response = await client.post(
            "/v1/events", json=event("new", "anna", "visit", "2026-11-20T09:30:00Z"), headers=headers
        )
    finally:
        for engine in engines:
            sa_event.remove(engine, "before_cursor_execute", counter.statement)
            sa_event.remove(engine, "begin", began)
        monkeypatch.undo()
    assert response.status_code == 200, response.text
    types = [e["type"] for e in response.json()["effects"]]
    assert {"points_awarded", "progress_advanced", "rank_changed"} <= set(types), types
    shown = "\n".join(["SQL:", *(s[:90] for s in counter.sql), "REDIS:", *(c[:90] for c in counter.redis)])
    # The floor reached: the duplicate look-up with the config version (autocommit, before BEGIN), the member
    # lock, the challenge states read, the board totals upsert returning what the board directory shows of
    # its members (one statement), then ledger lot, balance upsert, outbox, the challenge states and event
    # log in ONE statement (engine.fused: CTEs over unnest); then BEGIN/COMMIT (not cursor executes); after
    # commit, the event's stored result completed with its rank, in autocommit (so a duplicate answers
    # exactly the first answer). Was 11 statements (four config reads), then 10, then 8, then 7.
    assert counter.sql[0].startswith("SELECT brands.config_version, k.key"), shown
    assert len(counter.sql) <= 6, shown
    assert not any(s.startswith("INSERT INTO challenge_member_states") for s in counter.sql), shown
    fused_write = next(s for s in counter.sql if s.startswith("WITH ledger_rows AS"))
    assert "challenge_member_states_rows AS (INSERT INTO challenge_member_states" in fused_write, shown
    directory_read = "SELECT members.id, members.external_id, members.display_name, members.attributes"
    assert not any(s.startswith(directory_read) for s in counter.sql), shown
    assert sum(s.startswith("WITH up AS (INSERT INTO leaderboard_totals") for s in counter.sql) == 1, shown
    assert sum(s.startswith("WITH ledger_rows AS (INSERT INTO ledger") for s in counter.sql) == 1, shown
    assert not any(
        s.startswith(("INSERT INTO ledger", "INSERT INTO point_balances", "INSERT INTO event_log")) for s in counter.sql
    ), shown
    assert sum("config_version" in s for s in counter.sql) == 1, shown
    # One transaction: the unit's. The duplicate look-up before it and the stored result's rewrite after it
    # are one autocommit statement each (asyncpg sends no BEGIN/COMMIT for them).
    assert counter.sql[-1].startswith("UPDATE event_log SET result = u.result FROM unnest"), shown
    assert begins == ["AUTOCOMMIT", None, "AUTOCOMMIT"], (begins, shown)
    # Redis: the key's rate-limit bucket (one script), then the board MULTI: totals, directory, the script
    # that reads the ranks and publishes the board's live message, and the unit's other PUBLISHes (the
    # member's and the brand's channels). Was 3 (the PUBLISHes in a round trip of their own).
    assert len(counter.redis) <= 2, shown
    assert "EVALSHA" in counter.redis[0], shown
    board_write = counter.redis[-1]
    assert "MULTI" in board_write and "EXEC" in board_write, shown
    assert "ZREVRANK" in board_write or "ZCOUNT" in board_write, shown  # the announce script's text (EVAL)
    assert board_write.count("PUBLISH") >= 3, shown  # the script's, the member's channel, the brand's


async def test_a_duplicate_takes_one_statement_and_no_transaction(client, brand, program, backend):
    if not backend.startswith("postgres"):
        pytest.skip("round trips are counted on PostgreSQL")
    services = client.app.state.services
    counter = Counter()
    body = event("once", "bruno", "visit", "2026-11-20T09:00:00Z")
    first = await client.post("/v1/events", json=body, headers=brand.headers)
    assert first.status_code == 200, first.text
    await settle(client)
    engines = [engine.sync_engine for engine in services.db.engines]  # the units' pool too (Database.unit)
    begins: list[object] = []

    def began(conn: Any) -> None:
        begins.append(conn.get_execution_options().get("isolation_level"))

    for engine in engines:
        sa_event.listen(engine, "before_cursor_execute", counter.statement)
        sa_event.listen(engine, "begin", began)
    try:
        again = await client.post("/v1/events", json=body, headers=brand.headers)
    finally:
        for engine in engines:
            sa_event.remove(engine, "before_cursor_execute", counter.statement)
            sa_event.remove(engine, "begin", began)
    assert again.json()["duplicate"] is True
    # answered exactly the first answer, the new rank included (stored after commit)
    assert again.json()["effects"] == first.json()["effects"]
    assert len(counter.sql) == 1 and not ROW_LOCK.search(counter.sql[0]), counter.sql
    assert begins == ["AUTOCOMMIT"]  # SQLAlchemy's logical begin only: asyncpg sends no BEGIN in autocommit


async def _statements_of_one_event(
    client, services, headers, event_id: str, at: str, member: str = "anna"
) -> list[str]:
    seen: list[str] = []
    await settle(client)

    def statement(_conn: Any, _cursor: Any, text: str, *_args: Any) -> None:
        seen.append(" ".join(text.split()))

    for engine in services.db.engines:
        sa_event.listen(engine.sync_engine, "before_cursor_execute", statement)
    try:
        response = await client.post("/v1/events", json=event(event_id, member, "visit", at), headers=headers)
    finally:
        for engine in services.db.engines:
            sa_event.remove(engine.sync_engine, "before_cursor_execute", statement)
    assert response.status_code == 200, response.text
    return seen


async def test_segments_on_the_ingest_path_add_one_read_after_the_lock(client, brand, program, backend):
    if not backend.startswith("postgres"):
        pytest.skip("round trips are counted on PostgreSQL")
    services = client.app.state.services
    headers = brand.headers
    warm = await client.post("/v1/events", json=event("w1", "anna", "visit", "2026-11-20T08:00:00Z"), headers=headers)
    assert warm.status_code == 200, warm.text
    without = await _statements_of_one_event(client, services, headers, "n1", "2026-11-20T09:00:00Z")
    segment = {
        "slug": "regulars",
        "clauses": [
            {"metric": "events", "event_type": "visit", "days": 30, "gte": 2},
            {"metric": "days_since_last_event", "lte": 7},
            {"metric": "points_balance", "gte": 1},
            {"metric": "badges", "gte": 0},
        ],
    }
    assert (await client.put("/v1/segments/regulars", json=segment, headers=headers)).status_code == 201
    rule = {"key": "regular-bonus", "event_type": "visit", "points": 1, "filter": {"segment": "regulars"}}
    assert (await client.put("/v1/earning-rules/regular-bonus", json=rule, headers=headers)).status_code in (200, 201)
    warm = await client.post("/v1/events", json=event("w2", "anna", "visit", "2026-11-20T08:30:00Z"), headers=headers)
    assert warm.status_code == 200, warm.text  # loads the new definitions into the caches
    with_segments = await _statements_of_one_event(client, services, headers, "n2", "2026-11-20T09:30:00Z")
    shown = "\n".join(["WITHOUT:", *without, "WITH:", *with_segments])
    # The segment's four metrics are one statement, read right after the member lock (not in it: a lock
    # statement that waited computes its columns in the snapshot from before the wait, see
    # tests/integration/test_lock_columns.py).
    # (at most one more: the two events need not write the same rows otherwise; here the challenge was
    # completed already, so the second writes no challenge state)
    assert len(with_segments) <= len(without) + 1, shown
    assert sum(s.startswith("SELECT members.id, (SELECT count(*)") for s in with_segments) == 1, shown
    at = next(i for i, s in enumerate(with_segments) if ROW_LOCK.search(s) and "FROM members" in s)
    lock, facts = with_segments[at], with_segments[at + 1]
    assert "count(*)" not in lock and "badge_awards" not in lock, shown
    assert not ROW_LOCK.search(facts) and facts.startswith("SELECT members.id"), shown
    assert "count(*)" in facts and "max(event_log.occurred_at)" in facts and "badge_awards" in facts, shown
    result = await client.get("/v1/segments/regulars/members/anna", headers=headers)
    assert result.json()["in_segment"] is True, result.text


async def test_a_new_members_first_event_creates_it_in_the_lock_statement(client, brand, program, backend):
    """A member's first event creates it in the statement that locks the unit's members (engine.members).

    It took one statement more than a known member's event: the lock found nobody, then an insert created
    the member.
    """
    if not backend.startswith("postgres"):
        pytest.skip("round trips are counted on PostgreSQL")
    services = client.app.state.services
    headers = brand.headers
    warm = await client.post("/v1/events", json=event("w1", "anna", "visit", "2026-11-20T08:00:00Z"), headers=headers)
    assert warm.status_code == 200, warm.text
    known = await _statements_of_one_event(client, services, headers, "k1", "2026-11-20T09:00:00Z")
    first = await _statements_of_one_event(client, services, headers, "n1", "2026-11-20T09:00:00Z", member="nuova")
    shown = "\n".join(["KNOWN:", *(s[:90] for s in known), "NEW:", *(s[:90] for s in first)])
    assert len(first) == len(known), shown
    assert not any(s.startswith("INSERT INTO members") for s in first), shown
    assert sum(bool(ROW_LOCK.search(s)) for s in first) == 1, shown
    members = await client.get("/v1/members/nuova", headers=headers)
    assert members.status_code == 200, members.text

"""Leaderboards below HTTP: the program-document section, and the BoardStore contract on both backends."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete

from engine.errors import DefinitionError
from engine.tenants import config_version
from leaderboards import config, ranking
from leaderboards.models import BoardDef, EventCountMetric, PeriodRef
from leaderboards.orm import BoardRow
from leaderboards.store import BoardStore, Slot, Write

WEEK = PeriodRef(
    id="2026-W47", starts_at=datetime(2026, 11, 15, 23, tzinfo=UTC), ends_at=datetime(2026, 11, 22, 23, tzinfo=UTC)
)
AT = datetime(2026, 11, 20, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
async def _drop_boards(brand, db):
    yield
    async with db.write() as session:
        await session.execute(delete(BoardRow).where(BoardRow.brand_id == brand.brand.id))


SECTION = [
    {"key": "weekly", "title": "Weekly", "metric": {"kind": "points"}, "period": "weekly"},
    {
        "key": "stores",
        "title": "Stores",
        "metric": {"kind": "event_count", "event_type": "visit"},
        "scope": "store",
        "ties": "dense",
        "filter": {"field": "member.tier", "in": ["gold"]},
    },
]


async def test_program_section_parses_applies_and_exports(db, brand, clock):
    boards = config.parse_section(SECTION, path="$.leaderboards")
    assert [b.key for b in boards] == ["weekly", "stores"]
    brand_id = brand.brand.id
    async with db.write() as session:
        before = await config_version(session, brand_id)
        changes = await config.apply_section(session, brand_id=brand_id, defs=boards, now=clock.now())
        assert changes == ["leaderboard weekly: created", "leaderboard stores: created"]
        assert await config_version(session, brand_id) == before + 1
    async with db.write() as session:
        assert await config.apply_section(session, brand_id=brand_id, defs=boards, now=clock.now()) == []
        exported = await config.export_section(session, brand_id=brand_id)
    assert [b.key for b in config.parse_section(exported, path="$")] == ["stores", "weekly"]
    assert {e["key"]: e["filter"] for e in exported}["stores"] == {"field": "member.tier", "in": ["gold"]}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"not": "a list"}, "$.leaderboards"),
        ([{"key": "x", "title": "X"}], "$.leaderboards[0]"),
        ([{"key": "x", "title": "X", "metric": {"kind": "points"}, "order": "sideways"}], "$.leaderboards[0].order"),
        ([SECTION[0], SECTION[0]], "$.leaderboards[1].key"),
        ([{**SECTION[1], "filter": {"field": "member.tier", "between": 1}}], "$.leaderboards[0].filter.between"),
    ],
)
def test_program_section_names_the_path_of_a_mistake(data, field):
    with pytest.raises(DefinitionError) as info:
        config.parse_section(data, path="$.leaderboards")
    assert info.value.field == field


def dense_board() -> BoardDef:
    return BoardDef(
        id=1, key="dense", title="D", metric=EventCountMetric(event_type="v"), period="weekly", ties="dense"
    )


async def test_dense_companions_stay_exact_under_replays_and_concurrency(redis, redis_namespace, brand):
    store = BoardStore(redis, namespace=redis_namespace)
    slot = Slot(brand_id=brand.brand.id, board=dense_board(), period=WEEK)
    rng = random.Random(5)
    final: dict[int, int] = {}

    async def writer(seed: int) -> None:
        local = random.Random(seed)
        for _ in range(30):
            member = local.randrange(12)
            units = local.randrange(5)
            final[member] = units  # last write per member wins in this single loop order
            await store.apply([Write(slot=slot, member_id=member, units=units, reached_at=AT)])

    await asyncio.gather(*(writer(rng.randrange(10**6)) for _ in range(4)))
    # Replaying absolute writes changes nothing.
    scores = dict(await redis.zrange(store.key(slot), 0, -1, withscores=True))
    writes = [Write(slot=slot, member_id=int(m), units=int(s), reached_at=AT) for m, s in scores.items()]
    await store.apply(writes)
    await store.apply(writes)
    _zkey, dkey, ckey = store.slot_keys(slot)
    counts = {int(k): int(v) for k, v in (await redis.hgetall(ckey)).items()}
    expected: dict[int, int] = {}
    for score in scores.values():
        expected[int(score)] = expected.get(int(score), 0) + 1
    assert counts == expected
    assert sorted(int(m) for m in await redis.zrange(dkey, 0, -1)) == sorted(expected)
    # Dense ranks from the store agree with a full ranking.
    snap = await store.read(slot, offset=0, limit=20)
    assert snap.page == ranking.place(slot.board, WEEK, list((int(m), s) for m, s in scores.items()))


async def test_store_reads_page_edges_inside_ties(redis, redis_namespace, brand):
    store = BoardStore(redis, namespace=redis_namespace)
    for ties in ("competition", "dense", "first_to_reach"):
        board = BoardDef(
            id=1, key=f"t-{ties}", title="T", metric=EventCountMetric(event_type="v"), period="weekly", ties=ties
        )
        slot = Slot(brand_id=brand.brand.id, board=board, period=WEEK)
        units = [9, 7, 7, 7, 7, 5, 5, 3, 3, 3, 1]
        await store.apply([Write(slot=slot, member_id=m, units=u, reached_at=AT) for m, u in enumerate(units)])
        full = ranking.place(board, WEEK, [(m, ranking.redis_score(board, WEEK, u, AT)) for m, u in enumerate(units)])
        for offset in range(len(units)):
            for member in (0, 4, 10):
                snap = await store.read(slot, offset=offset, limit=3, member_id=member, k=2, friends=[1, 9, 99])
                assert snap.page == full[offset : offset + 3]
                me = next(p for p in full if p.member_id == member)
                assert snap.me == me
                start, stop = ranking.around_bounds(me.position, 2, len(units))
                assert snap.around == full[start : stop + 1]
                assert set(snap.friends) == {1, 9}
                assert snap.total == len(units)
        await store.delete(store.slot_keys(slot))

"""Leaderboards below HTTP: the program-document section, and the BoardStore contract on both backends."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete

from engine.errors import DefinitionError
from engine.redisconn import is_cluster
from engine.tenants import config_version
from leaderboards import config, ranking
from leaderboards.models import BoardDef, EventCountMetric, PeriodRef, Placed
from leaderboards.orm import BoardRow
from leaderboards.script_batch import ScriptBatch, _Lane
from leaderboards.slots import Listing, Slot, Write
from leaderboards.store import BoardStore
from tests.helpers import listening

# The leaderboard contract runs on a Redis Cluster too (tests/conftest.py).
pytestmark = pytest.mark.redis_cluster

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
    await store.mark_board_ready(brand.brand.id, [slot.board.key])
    snap = await store.read(slot, offset=0, limit=20)
    assert snap.page == ranking.place(slot.board, WEEK, list((int(m), s) for m, s in scores.items()))


@contextmanager
def counted_pipelines(redis: Any, record: Callable[[int], object]) -> Iterator[None]:
    """Within the block, ``record`` gets the number of commands of each pipeline ``redis`` sends.

    The reads' batches written straight on a connection (``ScriptBatch._written``) or on the batch's lane
    (``_Lane.send``) count as pipelines too.
    """
    pipeline = redis.pipeline
    written = ScriptBatch._written
    sent = _Lane.send

    async def write_counted(self: ScriptBatch, calls: list[Any]) -> Any:
        record(len(calls))
        return await written(self, calls)

    def send_counted(self: _Lane, packed: bytes, futures: list[Any]) -> None:
        record(len(futures))
        sent(self, packed, futures)

    def counted(*args: Any, **options: Any) -> Any:
        pipe = pipeline(*args, **options)
        run = pipe.execute

        async def recorded(*a: Any, **kw: Any) -> Any:
            record(len(pipe))
            return await run(*a, **kw)

        pipe.execute = recorded
        return pipe

    redis.pipeline = counted
    ScriptBatch._written = write_counted  # type: ignore[method-assign]
    _Lane.send = send_counted  # type: ignore[method-assign]
    try:
        yield
    finally:
        redis.pipeline = pipeline
        ScriptBatch._written = written  # type: ignore[method-assign]
        _Lane.send = sent  # type: ignore[method-assign]


def listings_for(brand_id: int, board: BoardDef, members: range) -> list[Listing]:
    assert board.display == "full_name"  # the label is the display name
    return [Listing(brand_id=brand_id, member_id=m, external_id=f"x{m}", display_name=f"L{m}") for m in members]


async def five_members(store: BoardStore, brand_id: int, board: BoardDef, scope: str) -> Slot:
    """A slot of ``board`` (this week, ``scope``) where members 0–4 (``x0``–``x4``) have 0–4, the board ready."""
    slot = Slot(brand_id=brand_id, board=board, period=WEEK, scope=scope)
    await store.apply(
        [Write(slot=slot, member_id=m, units=m, reached_at=AT) for m in range(5)],
        listings=listings_for(brand_id, board, range(5)),
    )
    await store.mark_board_ready(brand_id, [board.key])
    return slot


@pytest.mark.parametrize("ties", ["competition", "dense", "first_to_reach"])
@pytest.mark.parametrize("base", [0, 10**15 - 20], ids=["small", "15-digit"])
async def test_store_reads_page_edges_inside_ties(redis, redis_namespace, brand, ties, base):
    """One read script ranks every window like a full ranking, ties at page edges included.

    The 15-digit case checks that scores are compared as Redis formats them, not as Lua prints numbers.
    """
    store = BoardStore(redis, namespace=redis_namespace)
    brand_id = brand.brand.id
    board = BoardDef(
        id=1, key=f"t-{ties}", title="T", metric=EventCountMetric(event_type="v"), period="weekly", ties=ties
    )
    slot = Slot(brand_id=brand_id, board=board, period=WEEK)
    units = [base + u for u in [9, 7, 7, 7, 7, 5, 5, 3, 3, 3, 1]]
    if ties == "first_to_reach" and base:
        units = [u - base for u in units]  # the composite score's budget is far below 10^15
    await store.apply(
        [Write(slot=slot, member_id=m, units=u, reached_at=AT) for m, u in enumerate(units)],
        listings=listings_for(brand_id, board, range(len(units))),
    )
    await store.mark_board_ready(brand_id, [board.key])
    full = ranking.place(board, WEEK, [(m, ranking.redis_score(board, WEEK, u, AT)) for m, u in enumerate(units)])
    for offset in range(len(units)):
        for member in (0, 4, 10):
            snap = await store.read(slot, offset=offset, limit=3, around=f"x{member}", k=2, friends=["x1", "x9", "x99"])
            assert snap is not None
            assert snap.page == full[offset : offset + 3]
            me = next(p for p in full if p.member_id == member)
            assert snap.me == me
            assert snap.me_id == member
            start, stop = ranking.around_bounds(me.position, 2, len(units))
            assert snap.around == full[start : stop + 1]
            assert snap.friends == {"x1": full_of(full, 1), "x9": full_of(full, 9)}
            assert snap.total == len(units)
            shown = {p.member_id for p in [*snap.page, *snap.around, *snap.friends.values(), me]}
            assert snap.listings == {m: (f"x{m}", f"L{m}") for m in shown}
    # Without ±k the member's rank comes from a count.
    for member in range(len(units)):
        snap = await store.read(slot, offset=0, limit=0, around=f"x{member}")
        assert snap is not None
        assert snap.me == full_of(full, member)
        assert snap.page == []
        assert snap.around == []
    await store.delete([*store.slot_keys(slot), *store.directory_keys(brand_id)])


def full_of(full: list, member: int):
    return next(p for p in full if p.member_id == member)


async def test_store_read_knows_members_off_the_board_and_a_lost_board(redis, redis_namespace, brand):
    store = BoardStore(redis, namespace=redis_namespace)
    brand_id = brand.brand.id
    board = dense_board()
    slot = Slot(brand_id=brand_id, board=board, period=WEEK)
    assert await store.read(slot, offset=0, limit=10) is None  # no sentinel: Redis lost (or never had) the board
    await store.mark_board_ready(brand_id, [board.key])
    await store.apply(
        [
            Write(slot=slot, member_id=1, units=3, reached_at=AT),
            Write(slot=slot, member_id=2, units=0, reached_at=AT, listed=False),
        ],
        listings=listings_for(brand_id, board, range(1, 3)),
    )
    empty = await store.read(slot, offset=0, limit=10, around="nobody", k=3)
    assert empty is not None and empty.me_id is None and empty.me is None
    off = await store.read(slot, offset=0, limit=10, around="x2", k=3, friends=["x2", "x1"])
    assert off is not None
    assert off.me_id == 2 and off.me is None and off.around == []
    assert off.friends == {"x1": Placed(member_id=1, position=0, rank=1, units=3)}
    assert await store.find_member(brand_id, "x2") == (2, ("x2", "L2", "", "", False))
    assert await store.find_member(brand_id, "nobody") is None
    await store.forget_member(brand_id, 2)
    assert await store.find_member(brand_id, "x2") is None
    assert await redis.hkeys(store.directory_keys(brand_id)[1]) == [b"1"]
    assert await redis.hkeys(store.directory_keys(brand_id)[0]) == [b"x1"]
    await store.delete([*store.slot_keys(slot), *store.directory_keys(brand_id)])


async def test_reads_in_flight_together_share_one_pipeline_and_fail_alone(redis, redis_namespace, brand, backend):
    store = BoardStore(redis, namespace=redis_namespace)
    brand_id = brand.brand.id
    board = dense_board()
    slots = [Slot(brand_id=brand_id, board=board, period=WEEK, scope=f"s{n}") for n in range(3)]
    for n, slot in enumerate(slots):
        await store.apply(
            [Write(slot=slot, member_id=m, units=m + n, reached_at=AT) for m in range(5)],
            listings=listings_for(brand_id, board, range(5)),
        )
    await store.mark_board_ready(brand_id, [board.key])
    broken = Slot(brand_id=brand_id, board=board, period=WEEK, scope="broken")
    await redis.set(store.key(broken), "not a sorted set")
    pipelines: list[int] = []
    await store.read(slots[0], offset=0, limit=1)  # the script is loaded (EVALSHA finds it from now on)
    with counted_pipelines(redis, pipelines.append):
        results = await asyncio.gather(
            *(store.read(s, offset=0, limit=5, around="x4", k=1) for s in [*slots, broken]), return_exceptions=True
        )
        # A caller that gives up (a cancelled request) leaves the others of its batch alone.
        cancelled = asyncio.ensure_future(store.read(slots[0], offset=0, limit=5))
        await asyncio.sleep(0)
        cancelled.cancel()
        after = await asyncio.gather(*(store.read(s, offset=0, limit=5) for s in slots))
    assert pipelines == [4, 1, 3]  # four reads in one round trip, then the cancelled one, then three
    for n, snap in enumerate(results[:3]):
        assert snap.me == Placed(member_id=4, position=0, rank=1, units=4 + n)
    assert "WRONGTYPE" in str(results[3])
    assert cancelled.cancelled()
    assert [s.total for s in after] == [5, 5, 5]
    if backend.endswith("fakeredis"):  # never SCRIPT FLUSH the shared real Redis
        await redis.script_flush()
        again = await asyncio.gather(*(store.read(s, offset=0, limit=5) for s in slots))
        assert [s.total for s in again] == [5, 5, 5]
    await store.delete([k for s in [*slots, broken] for k in store.slot_keys(s)] + store.directory_keys(brand_id))


async def test_a_batch_of_reads_costs_one_round_trip_once_the_script_is_known(redis, redis_namespace, brand, backend):
    store = BoardStore(redis, namespace=redis_namespace)
    brand_id = brand.brand.id
    board = dense_board()
    slot = await five_members(store, brand_id, board, "trips")
    trips: list[str] = []
    with counted_pipelines(redis, lambda size: trips.append(f"pipeline:{size}")):
        first = await asyncio.gather(*(store.read(slot, offset=0, limit=5) for _ in range(2)))
        loaded = list(trips)
        trips.clear()
        steady = await asyncio.gather(*(store.read(slot, offset=0, limit=5, around="x3", k=1) for _ in range(3)))
        steady_trips = list(trips)
        trips.clear()
        if backend.endswith("fakeredis"):  # never SCRIPT FLUSH the shared real Redis
            await redis.script_flush()
            flushed = await store.read(slot, offset=0, limit=5)
            assert flushed is not None and flushed.total == 5
            # NOSCRIPT: SCRIPT LOAD on the client (not pipelined: a cluster refuses that), then EVALSHA again.
            assert trips == ["pipeline:1", "pipeline:1"]
    # EVALSHA from the first batch on (loaded once if Redis lacks it), one pipeline per batch.
    assert loaded[0] == "pipeline:2"
    assert steady_trips == ["pipeline:3"]
    assert [s.total for s in first] == [5, 5] and all(s.me is not None and s.me.rank == 2 for s in steady)
    await store.delete([*store.slot_keys(slot), *store.directory_keys(brand_id)])


async def test_on_a_plain_client_a_batch_of_reads_is_one_write_on_one_connection(
    redis, redis_namespace, brand, backend
):
    """The direct write of :class:`ScriptBatch` on a plain client, through its lane once open (on a socket);
    a cluster keeps redis-py's pipeline."""
    store = BoardStore(redis, namespace=redis_namespace)
    brand_id = brand.brand.id
    board = dense_board()
    slot = await five_members(store, brand_id, board, "direct")
    expected = await store.read(slot, offset=0, limit=5, around="x3", k=1)  # the script is loaded from here
    await asyncio.sleep(0.05)  # the lane the first batch started opening is open
    writes: list[int] = []
    checkouts: list[object] = []
    patched: list[Any] = []
    pool = getattr(redis, "connection_pool", None)  # a cluster has one per node
    get_connection = pool.get_connection if pool is not None else None
    lane_send = _Lane.send

    def on_lane(self: _Lane, packed: bytes, futures: list[Any]) -> None:
        writes.append(packed.count(b"EVALSHA"))
        lane_send(self, packed, futures)

    async def counted(*args: Any, **kwargs: Any) -> Any:
        connection = await get_connection(*args, **kwargs)  # type: ignore[misc]
        checkouts.append(connection)
        send = connection.send_packed_command

        async def sent(command: Any, *a: Any, **kw: Any) -> Any:
            writes.append((command if isinstance(command, bytes) else b"".join(command)).count(b"EVALSHA"))
            return await send(command, *a, **kw)

        connection.send_packed_command = sent
        patched.append(connection)
        return connection

    if pool is not None:
        pool.get_connection = counted
    pipeline = redis.pipeline
    pipelines: list[object] = []
    redis.pipeline = lambda *a, **kw: pipelines.append(a) or pipeline(*a, **kw)
    _Lane.send = on_lane  # type: ignore[method-assign]
    try:
        reads = await asyncio.gather(*(store.read(slot, offset=0, limit=5, around="x3", k=1) for _ in range(4)))
    finally:
        if pool is not None:
            pool.get_connection = get_connection
        redis.pipeline = pipeline
        _Lane.send = lane_send  # type: ignore[method-assign]
        for connection in patched:
            del connection.send_packed_command
    if is_cluster(redis):  # a cluster's pipeline finds each read's shard
        assert len(pipelines) == 1
    else:
        assert writes == [4]  # four EVALSHA, one write, one connection…
        assert pipelines == []  # …without redis-py's pipeline
        # On a socket the write goes on the lane, with no pool checkout; fakeredis takes a pooled connection.
        assert len(checkouts) == (1 if backend.endswith("fakeredis") else 0)
    assert reads == [expected] * 4  # the replies, each to its own caller, decoded as redis-py's pipeline gives them
    await store.delete([*store.slot_keys(slot), *store.directory_keys(brand_id)])


@pytest.mark.parametrize("ties", ["competition", "dense"])
async def test_a_gated_read_takes_a_token_and_reads_in_one_call_and_an_empty_bucket_reads_nothing(
    redis, redis_namespace, brand, backend, ties
):
    from engine import keys as engine_keys
    from engine.buckets import Charge, Refused
    from leaderboards import keys as lb_keys

    store = BoardStore(redis, namespace=redis_namespace)
    brand_id = brand.brand.id
    board = BoardDef(id=1, key=ties, title="T", metric=EventCountMetric(event_type="v"), period="weekly", ties=ties)
    slot = await five_members(store, brand_id, board, "trips")
    bucket = engine_keys.rate_limit_bucket(redis_namespace, brand_id, 99)
    calls: list[int] = []
    plain = await store.read(slot, offset=0, limit=3, around="x2", k=1)
    warm = Charge(engine_keys.rate_limit_bucket(redis_namespace, brand_id, 102), rate=1, burst=5)
    assert await store.read(slot, offset=0, limit=3, charge=warm) is not None  # Redis knows the script from here
    with counted_pipelines(redis, calls.append):
        charges = [Charge(bucket, rate=0.001, burst=2) for _ in range(3)]
        gated = [await store.read(slot, offset=0, limit=3, around="x2", k=1, charge=c) for c in charges[:2]]
        assert calls == [1, 1]  # one EVALSHA each: the token and the read
        with pytest.raises(Refused):
            await store.read(slot, offset=0, limit=3, around="x2", k=1, charge=charges[2])
    assert gated == [plain, plain]  # the same snapshot as the plain read
    assert [(c.allowed, round(c.remaining)) for c in charges] == [(True, 1), (True, 0), (False, 0)]
    assert await redis.exists(bucket) == 1
    # A board whose sentinel is gone still costs the token; the read says the board is not there.
    ready = lb_keys.board_ready(redis_namespace, brand_id, board.key)
    await redis.delete(ready)
    fresh = Charge(engine_keys.rate_limit_bucket(redis_namespace, brand_id, 100), rate=1, burst=5)
    assert await store.read(slot, offset=0, limit=3, charge=fresh) is None
    assert fresh.allowed is True
    assert round(fresh.remaining) == 4
    if backend.endswith("fakeredis"):  # never SCRIPT FLUSH the shared real Redis
        await redis.script_flush()
        await store.mark_board_ready(brand_id, [board.key])
        again = Charge(engine_keys.rate_limit_bucket(redis_namespace, brand_id, 101), rate=1, burst=5)
        assert await store.read(slot, offset=0, limit=3, around="x2", k=1, charge=again) == plain
        assert again.allowed is True
    for name in [
        bucket,
        ready,
        *(engine_keys.rate_limit_bucket(redis_namespace, brand_id, n) for n in (100, 101, 102)),
    ]:
        await redis.delete(name)  # one by one: on a cluster the bucket and the board share a slot, but keep it plain
    await store.delete(store.slot_keys(slot) + store.directory_keys(brand_id))


@pytest.mark.parametrize("ties", ["competition", "first_to_reach", "dense"])
async def test_board_writes_publish_their_live_messages_in_the_same_round_trip(redis, redis_namespace, brand, ties):
    """The ranks the MULTI reads are the ranks of a write alone; Redis fills them into the live message and
    publishes it with the unit's other messages (on a cluster the caller publishes: nothing is sent)."""
    from leaderboards.live import Shown, live_message

    store = BoardStore(redis, namespace=redis_namespace)
    brand_id = brand.brand.id
    board = BoardDef(id=1, key=f"a-{ties}", title="A", metric=EventCountMetric(event_type="v"), ties=ties)
    slot = Slot(brand_id=brand_id, board=board, period=WEEK)
    await store.apply([Write(slot=slot, member_id=m, units=u, reached_at=AT) for m, u in [(1, 5), (2, 5), (3, 9)]])
    writes = [
        Write(slot=slot, member_id=4, units=7, reached_at=AT),
        Write(slot=slot, member_id=2, units=0, reached_at=AT, listed=False),  # off the board: no rank
        Write(slot=slot, member_id=5, units=5, reached_at=AT),
    ]
    shown = [
        (0, Shown(period=WEEK.id, scope="", member="d", score=7.0)),
        (2, Shown(period=WEEK.id, scope="", member="e", score=5.0)),
    ]
    both = live_message("ch-both", board.key, shown, at=AT)
    one = live_message("ch-one", board.key, shown[1:], at=AT)
    sharded = is_cluster(redis)
    # as the processor does: the unit's other messages ride along only where the store publishes
    messages = [] if sharded else [("ch-other", b"hello")]
    async with listening(redis, "ch-both", "ch-one", "ch-other") as receive:
        applied = await store.apply_and_announce(writes, live=[both, one], messages=messages)
        heard: dict[str, bytes] = {}
        for _ in range(20):
            message = await receive(0.2)
            if message is not None:
                channel = message["channel"]
                heard[channel.decode() if isinstance(channel, bytes) else channel] = message["data"]
            elif len(heard) >= 3 or sharded:
                break
    # the same ranks as the reads of the store's plain writes (a count of better scores, or a position)
    again = await store.apply(writes)
    assert applied.ranks == again[1]
    assert applied.ranks[1] is None and applied.ranks[0] is not None and applied.ranks[2] is not None
    if sharded:
        assert not store.announces and applied.announced == [False, False] and heard == {}
        with pytest.raises(ValueError, match="does not publish"):
            await store.apply_and_announce(writes, messages=[("ch-other", b"hello")])
    else:
        numbers = [placed for placed in (applied.ranks[0], applied.ranks[2]) if placed is not None]
        assert applied.announced == [True, True]
        expected = {"ch-both": both.filled(numbers), "ch-one": one.filled(numbers[1:]), "ch-other": b"hello"}
        assert heard == expected
    await store.delete(store.slot_keys(slot))


async def test_a_live_message_whose_member_is_not_on_the_board_is_left_to_the_caller(redis, redis_namespace, backend):
    """A rank the announce script cannot read (-1) keeps its message from being published."""
    from leaderboards.scripts import ANNOUNCE_SCRIPT

    if is_cluster(redis):
        pytest.skip("the announce script runs on a single Redis (a cluster's caller publishes)")
    key = f"{redis_namespace}:{{b9}}:announce"
    await redis.zadd(key, {b"1": 5.0})
    pubsub = redis.pubsub()
    await pubsub.subscribe("ch-nil")
    try:
        await pubsub.get_message(timeout=1.0)
        reply = await redis.eval(
            ANNOUNCE_SCRIPT, 4, key, key, key, key, 2, b"r1", b"r2", "ch-nil", 1, 2, b"<", b"|", b">"
        )
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.3) is None
    finally:
        await pubsub.aclose()
        await redis.delete(key)
    assert reply == [1, -1, 1, 1, 0]  # ranks, sizes, the message not published

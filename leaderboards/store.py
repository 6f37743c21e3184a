"""BoardStore: the Redis projection of the boards, one sorted set per (brand, board, period, scope).

Writes are absolute (``ZADD`` of a member's total, never ``ZINCRBY``) inside ``MULTI``, so replaying an
update is harmless. Dense boards also keep the set of distinct scores with a per-score count; that is a
read-then-write, done under ``WATCH``. Each board also keeps a directory (external id → member,
member → label), written with the totals, which the read path resolves members and names with.

A read is one Lua script (:data:`READ_SCRIPT`, ``EVALSHA``) over the board's keys only (one hash tag,
so Cluster-safe): the top page, the member's rank and ±k window, friends' ranks, every rank by the
board's tie policy and the labels, in one consistent snapshot and one round trip. The reads in flight
together are pipelined (:class:`ScriptBatch`). Every key comes from :mod:`leaderboards.keys`.

While a rebuild of the brand runs, every write also appends what it changed (a board member's standing
on one slot, or their directory entry) to the brand's rebuild log, in the same ``MULTI`` (``RPUSHX``: a
no-op when no rebuild runs). The rebuild re-reads those from SQL once its renames are done and writes
them with :meth:`BoardStore.settle`, which skips what was written again after the renames.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from redis.exceptions import NoScriptError, WatchError

from leaderboards import keys, ranking
from leaderboards.models import BoardDef, MemberInfo, PeriodRef, Placed

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

REBUILD_CHUNK = 5000
ListingValue = tuple[str, str, str]
"""What a board's directory holds per member: (external id, label, scope value)."""
_LISTING = msgspec.json.Decoder(ListingValue)
_encode = msgspec.json.encode

# Scores are compared and counted as the strings Redis formats them in (exact, 17 significant digits),
# never as Lua numbers, which would print a large score with 14 digits only.
READ_SCRIPT = """
if redis.call('EXISTS', KEYS[5]) == 0 then return {0} end
local z, dz, ids, names = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local offset, limit, k, ties = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local total = redis.call('ZCARD', z)
local wanted, shown = {}, 0

local function better(score)
  if ties == 'dense' then return redis.call('ZCOUNT', dz, '(' .. score, '+inf') end
  return redis.call('ZCOUNT', z, '(' .. score, '+inf')
end

local function rank_of(position, score)
  if ties == 'first_to_reach' or position == 0 then return position + 1 end
  return better(score) + 1
end

-- Ranks of ZRANGE … WITHSCORES rows read from position start: at most one count per window, the
-- rest follows from the scores (competition: position + 1 after a change; dense: + 1 per change).
local function ranks_of(rows, start)
  local ranks, n, previous, rank = {}, 0, nil, 0
  for i = 1, #rows, 2 do
    local score = rows[i + 1]
    if ties == 'first_to_reach' or previous == nil then
      rank = rank_of(start + n, score)
    elseif score ~= previous then
      if ties == 'dense' then rank = rank + 1 else rank = start + n + 1 end
    end
    n = n + 1
    ranks[n] = rank
    previous = score
    shown = shown + 1
    wanted[shown] = rows[i]
  end
  return ranks
end

local page = {}
if limit > 0 then page = redis.call('ZRANGE', z, offset, offset + limit - 1, 'REV', 'WITHSCORES') end
local page_ranks = ranks_of(page, offset)

local me, around, around_ranks, start = {}, {}, {}, 0
if ARGV[5] ~= '' then
  local member = redis.call('HGET', ids, ARGV[5])
  if member then
    me = {member}
    local position = redis.call('ZREVRANK', z, member)
    if position then
      local score = redis.call('ZSCORE', z, member)
      local rank
      if k > 0 then
        local size = math.min(2 * k + 1, total)
        start = math.max(0, math.min(position - k, total - size))
        around = redis.call('ZRANGE', z, start, start + size - 1, 'REV', 'WITHSCORES')
        around_ranks = ranks_of(around, start)
        rank = around_ranks[position - start + 1]
      else
        rank = rank_of(position, score)
      end
      me = {member, score, rank, position}
    end
    shown = shown + 1
    wanted[shown] = member
  end
end

local friends = {}
for i = 6, #ARGV do
  local member = redis.call('HGET', ids, ARGV[i])
  if member then
    local position = redis.call('ZREVRANK', z, member)
    if position then
      local score = redis.call('ZSCORE', z, member)
      friends[#friends + 1] = {i - 5, member, score, rank_of(position, score), position}
      shown = shown + 1
      wanted[shown] = member
    end
  end
end

local labels = {}
if shown > 0 then labels = redis.call('HMGET', names, unpack(wanted)) end
return {1, total, page, page_ranks, me, start, around, around_ranks, friends, labels}
"""
FIND_SCRIPT = """
local member = redis.call('HGET', KEYS[1], ARGV[1])
if not member then return {} end
return {member, redis.call('HGET', KEYS[2], member)}
"""


@dataclass(frozen=True, slots=True)
class Slot:
    """One sorted set: a period and scope value of a brand's board."""

    brand_id: int
    board: BoardDef
    period: PeriodRef
    scope: str = ""


@dataclass(frozen=True, slots=True)
class Write:
    """A member's absolute total on a slot; ``listed=False`` takes them off it (below minimum, opted out)."""

    slot: Slot
    member_id: int
    units: int
    reached_at: datetime
    listed: bool = True


@dataclass(frozen=True, slots=True)
class Listing:
    """A member in a board's directory: found by external id, shown by label (written with their totals)."""

    brand_id: int
    board: str
    member_id: int
    external_id: str
    label: str
    scope: str = ""


def standing_entry(board: str, period: str, scope: str, member_id: int) -> bytes:
    """The rebuild log's entry for a write of a member's standing on one slot."""
    return _encode(("z", board, period, scope, member_id))


def directory_entry(board: str, member_id: int) -> bytes:
    """The rebuild log's entry for a write of a member's directory entry on a board."""
    return _encode(("n", board, member_id))


def decode_entry(raw: bytes | str) -> list[Any]:
    """A rebuild log entry: ``["z", board, period, scope, member id]`` or ``["n", board, member id]``."""
    return list(msgspec.json.decode(raw))


def _write_entry(write: Write) -> bytes:
    slot = write.slot
    return standing_entry(slot.board.key, slot.period.id, slot.scope, write.member_id)


def listing(brand_id: int, board: BoardDef, info: MemberInfo) -> Listing:
    """What a board's directory keeps of a member: no label at all while they are opted out of a public board."""
    hidden = board.visibility == "public" and info.opt_out
    return Listing(
        brand_id=brand_id,
        board=board.key,
        member_id=info.member_id,
        external_id=info.external_id,
        label="" if hidden else ranking.member_label(board, info, brand_id=brand_id),
        scope=ranking.scope_of(board, info.attributes) or "",
    )


@dataclass(slots=True)
class Snapshot:
    """What one read of a slot found (``friends`` by external id, ``listings`` by member id)."""

    ready: bool
    total: int
    page: list[Placed] = field(default_factory=list)
    me: Placed | None = None
    me_id: int | None = None
    """The ``around`` member's id when the board's directory knows them (even if they are not ranked)."""
    around: list[Placed] = field(default_factory=list)
    friends: dict[Any, Placed] = field(default_factory=dict)
    listings: dict[int, ListingValue] = field(default_factory=dict)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ScriptBatch:
    """Auto-pipelining of one registered script: the calls made in one event-loop turn go in one pipeline.

    Under load many reads are in flight at once; sending them together costs one write and one read
    on the socket (and one Redis event) instead of one each, which is most of a call's client-side cost.
    Each call is still its own ``EVALSHA``: one consistent snapshot per read. A call alone is sent at the
    end of the current loop turn, so it waits for nothing.
    """

    def __init__(self, redis: Redis, script: AsyncScript) -> None:
        self._redis = redis
        self._script = script
        self._pending: list[tuple[list[Any], asyncio.Future[Any]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def __call__(self, *, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run the script (``EVALSHA``) with the next batch; returns its reply or raises its error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append(([len(keys), *keys, *args], future))
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _send(self, batch: list[tuple[list[Any], asyncio.Future[Any]]]) -> None:
        try:
            replies = await self._execute([call for call, _future in batch])
            missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if missing:
                # Redis lost its scripts (restart, SCRIPT FLUSH): load it once and run those calls again.
                await self._redis.script_load(self._script.script)
                for index, reply in zip(missing, await self._execute([batch[i][0] for i in missing]), strict=True):
                    replies[index] = reply
        except asyncio.CancelledError:
            for _call, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # a connection error fails every call of the batch, as it would fail each alone
            for _call, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_call, future), reply in zip(batch, replies, strict=True):
            if future.done():  # the caller gave up (a cancelled request)
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _execute(self, calls: list[list[Any]]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.execute_command("EVALSHA", self._script.sha, *call)
            return list(await pipe.execute(raise_on_error=False))


class BoardStore:
    """Derived leaderboard standings in Redis sorted sets; rebuildable from the SQL totals."""

    def __init__(self, redis: Redis, *, namespace: str = "ql") -> None:
        self._redis = redis
        self._namespace = namespace
        # Registered once: each call is an EVALSHA (the script is loaded again only after a flush); the
        # reads in flight together share one pipeline.
        self._read_script = ScriptBatch(redis, redis.register_script(READ_SCRIPT))
        self._find_script = redis.register_script(FIND_SCRIPT)

    @property
    def namespace(self) -> str:
        """The key prefix of this deployment."""
        return self._namespace

    @property
    def redis(self) -> Redis:
        """The client (for pub/sub and maintenance)."""
        return self._redis

    # --- keys ----------------------------------------------------------------------------------------

    def key(self, slot: Slot) -> str:
        """The sorted set of ``slot``."""
        return keys.standings(self._namespace, slot.brand_id, slot.board.key, slot.period.id, slot.scope)

    def _dense_keys(self, slot: Slot) -> tuple[str, str]:
        args = (self._namespace, slot.brand_id, slot.board.key, slot.period.id, slot.scope)
        return keys.distinct_scores(*args), keys.score_counts(*args)

    def slot_keys(self, slot: Slot) -> list[str]:
        """Every key that holds ``slot`` (the standings, plus the dense companions)."""
        if slot.board.ties == "dense":
            return [self.key(slot), *self._dense_keys(slot)]
        return [self.key(slot)]

    # --- writes --------------------------------------------------------------------------------------

    async def apply(
        self, writes: Sequence[Write], *, listings: Sequence[Listing] = ()
    ) -> tuple[bool, list[tuple[int, int] | None]]:
        """Write absolute totals; returns (brand sentinels present, each write's (new rank, board size) or ``None``).

        All non-dense writes, the members' directory entries (``listings``) and the rank reads go in one
        ``MULTI`` round trip.
        """
        if not writes and not listings:
            return True, []
        brand_ids = sorted({w.slot.brand_id for w in writes})
        dense = [w for w in writes if w.slot.board.ties == "dense"]
        if dense:
            await self._apply_dense(dense)
        logged: dict[int, list[bytes]] = {}
        for entry in listings:
            logged.setdefault(entry.brand_id, []).append(directory_entry(entry.board, entry.member_id))
        for write in writes:
            if write.slot.board.ties != "dense":
                logged.setdefault(write.slot.brand_id, []).append(_write_entry(write))
        async with self._redis.pipeline(transaction=True) as pipe:
            for brand_id in brand_ids:
                pipe.exists(keys.ready(self._namespace, brand_id))
            for brand_id, entries in logged.items():
                self._queue_log(pipe, brand_id, entries)
            for entry in listings:
                self._queue_listing(pipe, entry)
            for write in writes:
                if write.slot.board.ties == "dense":
                    continue
                token = ranking.member_token(write.member_id)
                if write.listed:
                    score = ranking.redis_score(write.slot.board, write.slot.period, write.units, write.reached_at)
                    pipe.zadd(self.key(write.slot), {token: score})
                else:
                    pipe.zrem(self.key(write.slot), token)
            listed = [w for w in writes if w.listed]
            for write in listed:
                self._queue_rank(pipe, write.slot, write.member_id, write.units)
                pipe.zcard(self.key(write.slot))
            replies = await pipe.execute()
        ready = all(bool(r) for r in replies[: len(brand_ids)])
        tail = replies[len(replies) - 2 * len(listed) :]
        ranks: list[tuple[int, int] | None] = []
        index = 0
        for write in writes:
            if not write.listed:
                ranks.append(None)
                continue
            reply, size = tail[index], tail[index + 1]
            index += 2
            ranks.append(None if reply is None else (int(reply) + 1, int(size)))
        return ready, ranks

    def _queue_rank(self, pipe: Any, slot: Slot, member_id: int, units: int) -> None:
        """Queue the command whose reply + 1 is the member's rank (a count of better scores, or a position)."""
        if slot.board.ties == "first_to_reach":
            pipe.zrevrank(self.key(slot), ranking.member_token(member_id))
        else:
            self._queue_count(pipe, slot, units)

    async def _apply_dense(self, writes: Sequence[Write]) -> None:
        by_slot: dict[Slot, list[Write]] = {}
        for write in writes:
            by_slot.setdefault(write.slot, []).append(write)
        for slot, group in by_slot.items():
            await self._write_dense(
                slot, {w.member_id: (ranking.signed(slot.board, w.units) if w.listed else None) for w in group}
            )

    async def _write_dense(self, slot: Slot, values: dict[int, int | None]) -> None:
        """Set (or remove, for ``None``) members of a dense slot, keeping distinct scores and counts exact."""
        zkey = self.key(slot)
        ckey = self._dense_keys(slot)[1]
        entries = [standing_entry(slot.board.key, slot.period.id, slot.scope, m) for m in values]
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(zkey, ckey)
                    counts = await self._dense_counts(pipe, slot, values)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    self._queue_log(pipe, slot.brand_id, entries)
                    self._queue_dense(pipe, slot, values, counts)
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def _dense_counts(self, pipe: Any, slot: Slot, values: dict[int, int | None]) -> list[tuple[int, int]]:
        """(score, members holding it afterwards) for each score whose count the writes change (read under WATCH)."""
        tokens = [ranking.member_token(m) for m in values]
        olds = await pipe.zmscore(self.key(slot), tokens)
        delta: dict[int, int] = {}
        for new, old in zip(values.values(), olds, strict=True):
            old_value = None if old is None else int(old)
            if old_value == new:
                continue
            if old_value is not None:
                delta[old_value] = delta.get(old_value, 0) - 1
            if new is not None:
                delta[new] = delta.get(new, 0) + 1
        changed = [v for v, d in delta.items() if d]
        current = await pipe.hmget(self._dense_keys(slot)[1], [str(v) for v in changed]) if changed else []
        return [(v, int(count or 0) + delta[v]) for v, count in zip(changed, current, strict=True)]

    def _queue_dense(
        self, pipe: Any, slot: Slot, values: dict[int, int | None], counts: Sequence[tuple[int, int]]
    ) -> None:
        zkey = self.key(slot)
        dkey, ckey = self._dense_keys(slot)
        for member_id, new in values.items():
            token = ranking.member_token(member_id)
            if new is None:
                pipe.zrem(zkey, token)
            else:
                pipe.zadd(zkey, {token: float(new)})
        for value, after in counts:
            if after > 0:
                pipe.hset(ckey, str(value), after)
                pipe.zadd(dkey, {str(value): float(value)})
            else:
                pipe.hdel(ckey, str(value))
                pipe.zrem(dkey, str(value))

    def _queue_log(self, pipe: Any, brand_id: int, entries: Sequence[bytes]) -> None:
        """Append to the brand's rebuild log, if a rebuild runs (RPUSHX does nothing to a missing list)."""
        if entries:
            pipe.rpushx(keys.rebuild_log(self._namespace, brand_id), *entries)

    def _queue_listing(self, pipe: Any, entry: Listing) -> None:
        args = (self._namespace, entry.brand_id, entry.board)
        pipe.hset(keys.member_ids(*args), entry.external_id, entry.member_id)
        pipe.hset(
            keys.member_names(*args), str(entry.member_id), _encode((entry.external_id, entry.label, entry.scope))
        )

    async def forget_member(self, brand_id: int, boards: Sequence[str], member_id: int) -> None:
        """Take a member out of the given boards' directories (their external id and label)."""
        if not boards:
            return
        field = str(member_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for board in boards:
                pipe.hget(keys.member_names(self._namespace, brand_id, board), field)
            found = await pipe.execute()
        async with self._redis.pipeline(transaction=True) as pipe:
            self._queue_log(pipe, brand_id, [directory_entry(board, member_id) for board in boards])
            for board, raw in zip(boards, found, strict=True):
                self._queue_forget(pipe, brand_id, board, member_id, raw)
            await pipe.execute()

    def _queue_forget(self, pipe: Any, brand_id: int, board: str, member_id: int, raw: bytes | str | None) -> None:
        """Queue the removal of a member's directory entry (``raw``: what ``names`` holds of them, if anything)."""
        args = (self._namespace, brand_id, board)
        if raw is not None:
            pipe.hdel(keys.member_ids(*args), _LISTING.decode(raw)[0])
        pipe.hdel(keys.member_names(*args), str(member_id))

    # --- the rebuild log -----------------------------------------------------------------------------

    async def begin_log(self, brand_id: int, *, seconds: int) -> None:
        """Start logging what writes change (a rebuild does, before it reads SQL); the log lives ``seconds``."""
        log = keys.rebuild_log(self._namespace, brand_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(log)
            pipe.rpush(log, b"^")  # RPUSHX only appends to a list that exists
            pipe.expire(log, seconds)
            await pipe.execute()

    async def logged(self, brand_id: int) -> tuple[int, list[bytes | str]] | None:
        """(length, entries) of the rebuild log so far, or ``None`` if it is gone (expired)."""
        found = await self._redis.lrange(keys.rebuild_log(self._namespace, brand_id), 0, -1)
        if not found:
            return None
        return len(found), list(found[1:])

    async def end_log(self, brand_id: int) -> None:
        """Stop logging writes."""
        await self._redis.delete(keys.rebuild_log(self._namespace, brand_id))

    async def settle(
        self,
        brand_id: int,
        *,
        start: int,
        writes: Sequence[Write],
        listings: Sequence[Listing] = (),
        forget: Sequence[tuple[str, int]] = (),
    ) -> bool:
        """Write what a rebuild re-read from SQL for the log's entries before ``start``, and end the log.

        Atomic against concurrent writers: under ``WATCH`` of the log, whatever was logged at or after
        ``start`` (written after the rebuild's renames, so Redis already holds it, at least as new) is
        left alone, and the rest is written in one ``MULTI``; a write landing meanwhile retries it.
        ``forget`` takes (board, member id) out of the boards' directories.

        Returns:
            ``False`` when the log is gone (it expired: what was written meanwhile is unknown).
        """
        log = keys.rebuild_log(self._namespace, brand_id)
        dense_slots = {w.slot for w in writes if w.slot.board.ties == "dense"}
        watched = [log, *(k for slot in dense_slots for k in (self.key(slot), self._dense_keys(slot)[1]))]
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(*watched)
                    if not await pipe.exists(log):
                        return False
                    later = set(await pipe.lrange(log, start, -1))
                    kept = [w for w in writes if _write_entry(w) not in later]
                    by_slot: dict[Slot, dict[int, int | None]] = {}
                    for write in kept:
                        if write.slot.board.ties == "dense":
                            value = ranking.signed(write.slot.board, write.units) if write.listed else None
                            by_slot.setdefault(write.slot, {})[write.member_id] = value
                    counts = {slot: await self._dense_counts(pipe, slot, values) for slot, values in by_slot.items()}
                    gone = [(b, m) for b, m in forget if directory_entry(b, m) not in later]
                    raws = [await pipe.hget(keys.member_names(self._namespace, brand_id, b), str(m)) for b, m in gone]
                    pipe.multi()  # type: ignore[no-untyped-call]
                    for slot, values in by_slot.items():
                        self._queue_dense(pipe, slot, values, counts[slot])
                    for write in kept:
                        if write.slot.board.ties == "dense":
                            continue
                        token = ranking.member_token(write.member_id)
                        if write.listed:
                            score = ranking.redis_score(
                                write.slot.board, write.slot.period, write.units, write.reached_at
                            )
                            pipe.zadd(self.key(write.slot), {token: score})
                        else:
                            pipe.zrem(self.key(write.slot), token)
                    for entry in listings:
                        if directory_entry(entry.board, entry.member_id) not in later:
                            self._queue_listing(pipe, entry)
                    for (board, member_id), raw in zip(gone, raws, strict=True):
                        self._queue_forget(pipe, brand_id, board, member_id, raw)
                    pipe.delete(log)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    def directory_keys(self, brand_id: int, board: str) -> list[str]:
        """The keys of a board's directory and its sentinel."""
        args = (self._namespace, brand_id, board)
        return [keys.member_ids(*args), keys.member_names(*args), keys.board_ready(*args)]

    async def replace_directory(self, brand_id: int, board: str, entries: Sequence[Listing]) -> None:
        """Make a board's directory hold exactly ``entries``: filled aside, then renamed over it."""
        token = secrets.token_hex(6)
        args = (self._namespace, brand_id, board)
        targets = [keys.member_ids(*args), keys.member_names(*args)]
        temps = [keys.temporary(k, token) for k in targets]
        async with self._redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(entries), REBUILD_CHUNK):
                chunk = entries[start : start + REBUILD_CHUNK]
                pipe.hset(temps[0], mapping={e.external_id: e.member_id for e in chunk})
                pipe.hset(
                    temps[1], mapping={str(e.member_id): _encode((e.external_id, e.label, e.scope)) for e in chunk}
                )
                if len(pipe) >= 20:
                    await pipe.execute()
            await pipe.execute()
        async with self._redis.pipeline(transaction=True) as pipe:
            for target, temp in zip(targets, temps, strict=True):
                if entries:
                    pipe.rename(temp, target)
                else:
                    pipe.delete(target)
            await pipe.execute()

    async def mark_board_ready(self, brand_id: int, boards: Sequence[str]) -> None:
        """Write the boards' sentinels (a rebuild does, last)."""
        if not boards:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for board in boards:
                pipe.set(keys.board_ready(self._namespace, brand_id, board), b"1")
            await pipe.execute()

    async def remove(self, slots: Sequence[Slot], member_id: int) -> None:
        """Take a member off the given slots."""
        writes = [Write(slot=s, member_id=member_id, units=0, reached_at=ranking.EPOCH, listed=False) for s in slots]
        await self.apply(writes)

    async def replace(self, slot: Slot, entries: Sequence[tuple[int, float]], *, ttl: int | None = None) -> None:
        """Make ``slot`` hold exactly ``entries`` (member id, Redis score): filled aside, then renamed over it."""
        token = secrets.token_hex(6)
        targets = self.slot_keys(slot)
        temps = [keys.temporary(k, token) for k in targets]
        dense = slot.board.ties == "dense"
        counts: dict[int, int] = {}
        if dense:
            for _member_id, score in entries:
                counts[int(score)] = counts.get(int(score), 0) + 1
        async with self._redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(entries), REBUILD_CHUNK):
                chunk = entries[start : start + REBUILD_CHUNK]
                pipe.zadd(temps[0], {ranking.member_token(m): s for m, s in chunk})
                if len(pipe) >= 20:
                    await pipe.execute()
            if dense and counts:
                values = sorted(counts)
                for start in range(0, len(values), REBUILD_CHUNK):
                    chunk_values = values[start : start + REBUILD_CHUNK]
                    pipe.zadd(temps[1], {str(v): float(v) for v in chunk_values})
                    pipe.hset(temps[2], mapping={str(v): counts[v] for v in chunk_values})
            await pipe.execute()
        async with self._redis.pipeline(transaction=True) as pipe:
            for target, temp in zip(targets, temps, strict=True):
                if entries:
                    pipe.rename(temp, target)
                    if ttl is not None:
                        pipe.expire(target, ttl)
                else:
                    pipe.delete(target)
            await pipe.execute()

    async def expire(self, slots: Sequence[Slot], seconds: int) -> None:
        """Let closed periods' keys expire after ``seconds``."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for slot in slots:
                for key in self.slot_keys(slot):
                    pipe.expire(key, seconds)
            await pipe.execute()

    # --- brand state ---------------------------------------------------------------------------------

    async def is_ready(self, brand_id: int) -> bool:
        """Whether the brand's sentinel is present (its boards were rebuilt into this Redis)."""
        return bool(await self._redis.exists(keys.ready(self._namespace, brand_id)))

    async def mark_ready(self, brand_id: int, *, at: datetime) -> None:
        """Write the brand's sentinel."""
        await self._redis.set(keys.ready(self._namespace, brand_id), at.isoformat())

    async def lock_rebuild(self, brand_id: int, *, seconds: int = 300) -> str | None:
        """Take the brand's rebuild lock; returns its token, or ``None`` when another worker holds it."""
        token = secrets.token_hex(8)
        taken = await self._redis.set(keys.rebuild_lock(self._namespace, brand_id), token, nx=True, ex=seconds)
        return token if taken else None

    async def unlock_rebuild(self, brand_id: int, token: str) -> None:
        """Release the rebuild lock if it is still ours (checked under WATCH)."""
        key = keys.rebuild_lock(self._namespace, brand_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                held = await pipe.get(key)
                pipe.multi()  # type: ignore[no-untyped-call]
                if held is not None and _text(held) == token:
                    pipe.delete(key)
                await pipe.execute()
            except WatchError:
                return

    async def scan(self, pattern: str) -> list[str]:
        """Every key matching ``pattern`` (SCAN, never KEYS)."""
        found: list[str] = []
        async for key in self._redis.scan_iter(match=pattern, count=1000):
            found.append(key.decode() if isinstance(key, bytes) else str(key))
        return found

    async def delete(self, names: Sequence[str]) -> None:
        """Delete keys (``UNLINK``, so large sets are freed in the background)."""
        for start in range(0, len(names), 500):
            await self._redis.unlink(*names[start : start + 500])

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Publish (channel, payload) pairs in one round trip."""
        if not messages:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel, payload in messages:
                pipe.publish(channel, payload)
            await pipe.execute()

    # --- reads ---------------------------------------------------------------------------------------

    async def read(
        self,
        slot: Slot,
        *,
        offset: int,
        limit: int,
        around: str | None = None,
        k: int = 0,
        friends: Sequence[str] = (),
    ) -> Snapshot | None:
        """A page of the top, a member's rank with ±``k`` neighbours, friends' ranks, and the labels to show them.

        One round trip: a Lua script (EVALSHA) resolves the external ids through the board's directory,
        reads the standings and ranks every row by the board's tie policy inside Redis, so the answer is
        one consistent snapshot. Members are named by external id (``around``, ``friends``).

        Returns:
            The snapshot, or ``None`` when the board's sentinel is missing (Redis lost its data).
        """
        board = slot.board
        args = (self._namespace, slot.brand_id, board.key)
        zkey = self.key(slot)
        dkey = self._dense_keys(slot)[0] if board.ties == "dense" else zkey
        reply = await self._read_script(
            keys=[zkey, dkey, keys.member_ids(*args), keys.member_names(*args), keys.board_ready(*args)],
            args=[offset, limit, k, board.ties, around or "", *friends],
        )
        if not reply[0]:
            return None
        _ready, total, page, page_ranks, me, start, around_rows, around_ranks, placed_friends, labels = reply
        period = slot.period
        snapshot = Snapshot(ready=True, total=int(total))
        snapshot.page = _placed_rows(board, period, page, page_ranks, offset)
        snapshot.around = _placed_rows(board, period, around_rows, around_ranks, int(start))
        # The labels come in the order the script met the members: page, around, the member, friends.
        shown = [p.member_id for p in snapshot.page] + [p.member_id for p in snapshot.around]
        if me:
            snapshot.me_id = int(me[0])
            shown.append(snapshot.me_id)
            if len(me) > 1:
                snapshot.me = Placed(
                    member_id=snapshot.me_id,
                    position=int(me[3]),
                    rank=int(me[2]),
                    units=ranking.units_from_score(board, period, float(me[1])),
                )
        for index, member_id, score, rank, position in placed_friends:
            found = Placed(
                member_id=int(member_id),
                position=int(position),
                rank=int(rank),
                units=ranking.units_from_score(board, period, float(score)),
            )
            snapshot.friends[friends[int(index) - 1]] = found
            shown.append(found.member_id)
        listings = snapshot.listings
        for member_id, raw in zip(shown, labels, strict=True):
            if raw is not None and member_id not in listings:
                listings[member_id] = _LISTING.decode(raw)
        return snapshot

    async def find_member(self, brand_id: int, board: str, external_id: str) -> tuple[int, ListingValue] | None:
        """A member of the board's directory by external id: (member id, (external id, label, scope)), or ``None``."""
        args = (self._namespace, brand_id, board)
        reply = await self._find_script(keys=[keys.member_ids(*args), keys.member_names(*args)], args=[external_id])
        if not reply or reply[1] is None:
            return None
        return int(reply[0]), _LISTING.decode(reply[1])

    def _queue_count(self, pipe: Any, slot: Slot, units: int) -> None:
        """Queue the count of scores better than ``units`` (members for competition, distinct scores for dense)."""
        value = ranking.signed(slot.board, units)
        if slot.board.ties == "dense":
            pipe.zcount(self._dense_keys(slot)[0], f"({value}", "+inf")
        else:
            pipe.zcount(self.key(slot), f"({value}", "+inf")

    async def dump(self, pattern: str) -> dict[str, Any]:
        """Every matching key with its full content (sorted sets with scores, hashes, strings); for checks."""
        content: dict[str, Any] = {}
        for name in sorted(await self.scan(pattern)):
            kind = _text(await self._redis.type(name))
            if kind == "zset":
                content[name] = await self._redis.zrange(name, 0, -1, withscores=True)
            elif kind == "hash":
                content[name] = dict(sorted((await self._redis.hgetall(name)).items()))
            else:
                content[name] = await self._redis.get(name)
        return content


def _placed_rows(
    board: BoardDef, period: PeriodRef, rows: Sequence[Any], ranks: Sequence[int], start: int
) -> list[Placed]:
    """``ZRANGE … WITHSCORES`` rows read from position ``start``, with the ranks the read script gave them."""
    if board.ties == "first_to_reach":
        units = [ranking.units_from_score(board, period, float(score)) for score in rows[1::2]]
    else:  # the score is the signed units themselves
        sign = 1 if board.order == "desc" else -1
        units = [sign * int(float(score)) for score in rows[1::2]]
    return [
        Placed(member_id=int(member), position=position, rank=rank, units=value)
        for position, member, rank, value in zip(
            range(start, start + len(units)), rows[0::2], ranks, units, strict=True
        )
    ]

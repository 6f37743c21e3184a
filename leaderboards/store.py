"""BoardStore: the Redis projection of the boards, one sorted set per (brand, board, period, scope).

Writes are absolute (``ZADD`` of a member's total, never ``ZINCRBY``) inside ``MULTI``, so replaying an
update is harmless. Dense boards also keep the set of distinct scores with a per-score count; that is a
read-then-write, done under ``WATCH``. Reads take a consistent snapshot in one ``MULTI`` and need a
second round trip only for the counts that turn positions into ranks when ties cross a page edge.
Every key comes from :mod:`leaderboards.keys`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import WatchError

from leaderboards import keys, ranking
from leaderboards.models import BoardDef, PeriodRef, Placed

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from redis.asyncio import Redis

REBUILD_CHUNK = 5000


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


@dataclass(slots=True)
class Snapshot:
    """What one read of a slot found."""

    ready: bool
    total: int
    page: list[Placed] = field(default_factory=list)
    me: Placed | None = None
    around: list[Placed] = field(default_factory=list)
    friends: dict[int, Placed] = field(default_factory=dict)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class BoardStore:
    """Derived leaderboard standings in Redis sorted sets; rebuildable from the SQL totals."""

    def __init__(self, redis: Redis, *, namespace: str = "ql") -> None:
        self._redis = redis
        self._namespace = namespace

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

    async def apply(self, writes: Sequence[Write]) -> tuple[bool, list[tuple[int, int] | None]]:
        """Write absolute totals; returns (brand sentinels present, each write's (new rank, board size) or ``None``).

        All non-dense writes and the rank reads go in one ``MULTI`` round trip.
        """
        if not writes:
            return True, []
        brand_ids = sorted({w.slot.brand_id for w in writes})
        dense = [w for w in writes if w.slot.board.ties == "dense"]
        if dense:
            await self._apply_dense(dense)
        async with self._redis.pipeline(transaction=True) as pipe:
            for brand_id in brand_ids:
                pipe.exists(keys.ready(self._namespace, brand_id))
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
        dkey, ckey = self._dense_keys(slot)
        tokens = [ranking.member_token(m) for m in values]
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(zkey, ckey)
                    olds = await pipe.zmscore(zkey, tokens)  # type: ignore[arg-type]
                    delta: dict[int, int] = {}
                    for (_member, new), old in zip(values.items(), olds, strict=True):
                        old_value = None if old is None else int(old)
                        if old_value == new:
                            continue
                        if old_value is not None:
                            delta[old_value] = delta.get(old_value, 0) - 1
                        if new is not None:
                            delta[new] = delta.get(new, 0) + 1
                    changed = [v for v, d in delta.items() if d]
                    current = await pipe.hmget(ckey, [str(v) for v in changed]) if changed else []
                    pipe.multi()  # type: ignore[no-untyped-call]
                    for new, token in zip(values.values(), tokens, strict=True):
                        if new is None:
                            pipe.zrem(zkey, token)
                        else:
                            pipe.zadd(zkey, {token: float(new)})
                    for value, count in zip(changed, current, strict=True):
                        after = int(count or 0) + delta[value]
                        if after > 0:
                            pipe.hset(ckey, str(value), after)
                            pipe.zadd(dkey, {str(value): float(value)})
                        else:
                            pipe.hdel(ckey, str(value))
                            pipe.zrem(dkey, str(value))
                    await pipe.execute()
                    return
                except WatchError:
                    continue

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
        member_id: int | None = None,
        k: int = 0,
        friends: Sequence[int] = (),
    ) -> Snapshot:
        """A page of the top, and optionally a member's rank with ±``k`` neighbours and friends' ranks."""
        board, period = slot.board, slot.period
        key = self.key(slot)
        page_from = max(offset - 1, 0)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.exists(keys.ready(self._namespace, slot.brand_id))
            pipe.zcard(key)
            pipe.zrange(key, page_from, offset + limit - 1, desc=True, withscores=True)
            wanted = ([member_id] if member_id is not None else []) + list(friends)
            for wanted_id in wanted:
                pipe.zscore(key, ranking.member_token(wanted_id))
                pipe.zrevrank(key, ranking.member_token(wanted_id))
            replies = await pipe.execute()
        snapshot = Snapshot(ready=bool(replies[0]), total=int(replies[1]))
        page_rows = self._decode(board, period, replies[2])
        before = page_rows[0][1] if offset > 0 and page_rows else None
        page_rows = page_rows[1:] if offset > 0 else page_rows
        found: dict[int, tuple[int, int]] = {}
        for index, wanted_id in enumerate(wanted):
            score, position = replies[3 + 2 * index], replies[4 + 2 * index]
            if score is not None and position is not None:
                found[wanted_id] = (ranking.units_from_score(board, period, float(score)), int(position))
        known: dict[int, int] = {}
        around_rows: list[tuple[int, int]] = []
        around_before: int | None = None
        around_start = 0
        me = found.get(member_id) if member_id is not None else None
        # Second round trip: the member's window and the counts that turn scores into ranks.
        need_counts = {units for units, _ in found.values()} if board.ties != "first_to_reach" else set()
        page_result = ranking.rank_window(board, start=offset, before=before, window=page_rows, known=known)
        if isinstance(page_result, int):
            need_counts.add(page_result)
        if me is not None and k > 0:
            around_start, stop = ranking.around_bounds(me[1], k, snapshot.total)
        if need_counts or (me is not None and k > 0):
            counts_order = sorted(need_counts)
            async with self._redis.pipeline(transaction=True) as pipe:
                for units in counts_order:
                    self._queue_count(pipe, slot, units)
                if me is not None and k > 0:
                    pipe.zrange(key, max(around_start - 1, 0), stop, desc=True, withscores=True)
                replies = await pipe.execute()
            for units, reply in zip(counts_order, replies, strict=False):
                known[units] = int(reply) + 1
            if me is not None and k > 0:
                rows = self._decode(board, period, replies[-1])
                around_before = rows[0][1] if around_start > 0 and rows else None
                around_rows = rows[1:] if around_start > 0 else rows
        if isinstance(page_result, int):
            page_result = await self._rank_with_counts(slot, offset, before, page_rows, known)
        snapshot.page = page_result
        if around_rows:
            snapshot.around = await self._rank_with_counts(slot, around_start, around_before, around_rows, known)
        for wanted_id, (units, position) in found.items():
            rank = position + 1 if board.ties == "first_to_reach" else known[units]
            placed = Placed(member_id=wanted_id, position=position, rank=rank, units=units)
            if wanted_id == member_id:
                snapshot.me = placed
            if wanted_id in friends:
                snapshot.friends[wanted_id] = placed
        return snapshot

    async def _rank_with_counts(
        self, slot: Slot, start: int, before: int | None, rows: list[tuple[int, int]], known: dict[int, int]
    ) -> list[Placed]:
        while True:
            result = ranking.rank_window(slot.board, start=start, before=before, window=rows, known=known)
            if not isinstance(result, int):
                return result
            async with self._redis.pipeline(transaction=False) as pipe:
                self._queue_count(pipe, slot, result)
                (reply,) = await pipe.execute()
            known[result] = int(reply) + 1

    def _queue_count(self, pipe: Any, slot: Slot, units: int) -> None:
        """Queue the count of scores better than ``units`` (members for competition, distinct scores for dense)."""
        value = ranking.signed(slot.board, units)
        if slot.board.ties == "dense":
            pipe.zcount(self._dense_keys(slot)[0], f"({value}", "+inf")
        else:
            pipe.zcount(self.key(slot), f"({value}", "+inf")

    @staticmethod
    def _decode(board: BoardDef, period: PeriodRef, rows: Sequence[tuple[bytes, float]]) -> list[tuple[int, int]]:
        return [(int(member), ranking.units_from_score(board, period, float(score))) for member, score in rows]

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

"""The keys of a slot and the commands every write to the boards queues on a pipeline.

The base of :class:`leaderboards.store.BoardStore` (through
:class:`leaderboards.maintenance.StoreMaintenance`): the live writes and the rebuild's settling queue the
same commands, so the same code writes a member's standing, a dense board's distinct scores and counts,
a directory entry and the rebuild log in both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redis.exceptions import WatchError

from engine.redisconn import transaction_client
from leaderboards import keys, ranking
from leaderboards.slots import PERSON, standing_entry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio import Redis

    from leaderboards.slots import Listing, Slot, Write


class QueuedWrites:
    """Key names of slots and directories, and the write commands shared by live writes and rebuilds."""

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

    async def _transactions(self, brand_id: int) -> Redis:
        """The client for a ``MULTI``/``WATCH`` of the brand's keys (on a cluster: the slot's master)."""
        return await transaction_client(self._redis, keys.ready(self._namespace, brand_id))

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

    def directory_keys(self, brand_id: int) -> list[str]:
        """The keys of the brand's member directory: external id → member id, member id → entry."""
        return [keys.member_ids(self._namespace, brand_id), keys.people(self._namespace, brand_id)]

    def _queue_standing(self, pipe: Any, write: Write) -> None:
        """Queue a non-dense write: the member's absolute score, or their removal from the slot."""
        token = ranking.member_token(write.member_id)
        if write.listed:
            score = ranking.redis_score(write.slot.board, write.slot.period, write.units, write.reached_at)
            pipe.zadd(self.key(write.slot), {token: score})
        else:
            pipe.zrem(self.key(write.slot), token)

    def _queue_standings(self, pipe: Any, writes: Sequence[Write]) -> None:
        """Queue non-dense writes as one ``ZADD`` (and one ``ZREM``) per slot, not a command per write.

        A batch's writes to a board are hundreds of members: a command each cost redis-py's packing and
        Redis's parsing per member. A unit holds at most one write per member and slot, so the order of
        the members inside a slot's command changes nothing.
        """
        added: dict[str, dict[bytes, float]] = {}
        removed: dict[str, list[bytes]] = {}
        for write in writes:
            key, token = self.key(write.slot), ranking.member_token(write.member_id)
            if write.listed:
                score = ranking.redis_score(write.slot.board, write.slot.period, write.units, write.reached_at)
                added.setdefault(key, {})[token] = score
            else:
                removed.setdefault(key, []).append(token)
        for key, scores in added.items():
            pipe.zadd(key, scores)
        for key, tokens in removed.items():
            pipe.zrem(key, *tokens)

    def _queue_rank(self, pipe: Any, slot: Slot, member_id: int, units: int) -> None:
        """Queue the command whose reply + 1 is the member's rank (a count of better scores, or a position)."""
        kind, key, arg = self._rank_read(slot, member_id, units)
        if kind == "r":
            pipe.zrevrank(key, arg)
        else:
            pipe.zcount(key, b"(" + arg, "+inf")

    def _rank_read(self, slot: Slot, member_id: int, units: int) -> tuple[str, str, bytes]:
        """How a member's rank is read: its reverse rank, or a count of the values better than its own.

        ``("r", standings, member)`` on a first-to-reach board; else ``("c", key, value)``, counted in the
        standings (competition) or in a dense board's distinct scores.
        """
        if slot.board.ties == "first_to_reach":
            return "r", self.key(slot), ranking.member_token(member_id)
        value = str(ranking.signed(slot.board, units)).encode()
        return "c", self._dense_keys(slot)[0] if slot.board.ties == "dense" else self.key(slot), value

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
            async with (await self._transactions(slot.brand_id)).pipeline(transaction=True) as pipe:
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
        ids, people = self.directory_keys(entry.brand_id)
        pipe.hset(ids, entry.external_id, entry.member_id)
        pipe.hset(people, str(entry.member_id), entry.encoded())

    def _queue_listings(self, pipe: Any, entries: Sequence[Listing]) -> None:
        """Queue directory entries as two ``HSET`` per brand (ids, then people), not two per member."""
        by_brand: dict[int, tuple[dict[str, int], dict[str, bytes]]] = {}
        for entry in entries:
            ids, people = by_brand.setdefault(entry.brand_id, ({}, {}))
            ids[entry.external_id] = entry.member_id
            people[str(entry.member_id)] = entry.encoded()
        for brand_id, (ids, people) in by_brand.items():
            ids_key, people_key = self.directory_keys(brand_id)
            pipe.hset(ids_key, mapping=ids)
            pipe.hset(people_key, mapping=people)

    def _queue_forget(self, pipe: Any, brand_id: int, member_id: int, raw: bytes | str | None) -> None:
        """Queue the removal of a member's directory entry (``raw``: what ``people`` holds of them, if anything)."""
        ids, people = self.directory_keys(brand_id)
        if raw is not None:
            pipe.hdel(ids, PERSON.decode(raw)[0])
        pipe.hdel(people, str(member_id))

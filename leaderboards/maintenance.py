"""Redis upkeep of the boards: the rebuild log and its settling, whole-key replacement, sentinels, locks.

The rebuild (:mod:`leaderboards.rebuild`) and the period closer use these; the live writes and reads are
in :mod:`leaderboards.store`.

While a rebuild of the brand runs, every write also appends what it changed (a board member's standing
on one slot, or their directory entry) to the brand's rebuild log, in the same ``MULTI`` (``RPUSHX``: a
no-op when no rebuild runs). The rebuild re-reads those from SQL once its renames are done and writes
them with :meth:`StoreMaintenance.settle`, which skips what was written again after the renames.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from redis.exceptions import WatchError

from leaderboards import keys, ranking
from leaderboards.queued import QueuedWrites
from leaderboards.slots import directory_entry, text, write_entry

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from leaderboards.slots import Listing, Slot, Write

REBUILD_CHUNK = 5000
"""Members per command when a rebuild fills a key."""
SCRATCH_SECONDS = 3600
"""How long a rebuild's scratch copy of the directory lives if the rebuild dies before renaming it."""


class StoreMaintenance(QueuedWrites):
    """The rebuild log, key replacement, sentinels and the rebuild lock (the base of the BoardStore)."""

    # --- the rebuild log -----------------------------------------------------------------------------

    async def begin_log(self, brand_id: int, *, seconds: int) -> None:
        """Start logging what writes change (a rebuild does, before it reads SQL); the log lives ``seconds``."""
        log = keys.rebuild_log(self._namespace, brand_id)
        async with (await self._transactions(brand_id)).pipeline(transaction=True) as pipe:
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
        forget: Sequence[int] = (),
    ) -> bool:
        """Write what a rebuild re-read from SQL for the log's entries before ``start``, and end the log.

        Atomic against concurrent writers: under ``WATCH`` of the log, whatever was logged at or after
        ``start`` (written after the rebuild's renames, so Redis already holds it, at least as new) is
        left alone, and the rest is written in one ``MULTI``; a write landing meanwhile retries it.
        ``forget`` takes members out of the brand's directory.

        Returns:
            ``False`` when the log is gone (it expired: what was written meanwhile is unknown).
        """
        log = keys.rebuild_log(self._namespace, brand_id)
        dense_slots = {w.slot for w in writes if w.slot.board.ties == "dense"}
        watched = [log, *(k for slot in dense_slots for k in (self.key(slot), self._dense_keys(slot)[1]))]
        while True:
            async with (await self._transactions(brand_id)).pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(*watched)
                    if not await pipe.exists(log):
                        return False
                    later = set(await pipe.lrange(log, start, -1))
                    await self._queue_settle(pipe, brand_id, later, writes, listings, forget)
                    pipe.delete(log)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def _queue_settle(
        self,
        pipe: Any,
        brand_id: int,
        later: set[bytes | str],
        writes: Sequence[Write],
        listings: Sequence[Listing],
        forget: Sequence[int],
    ) -> None:
        """Read what the settling needs (under WATCH), then queue its writes after ``MULTI``, skipping ``later``."""
        kept = [w for w in writes if write_entry(w) not in later]
        by_slot: dict[Slot, dict[int, int | None]] = {}
        for write in kept:
            if write.slot.board.ties == "dense":
                value = ranking.signed(write.slot.board, write.units) if write.listed else None
                by_slot.setdefault(write.slot, {})[write.member_id] = value
        counts = {slot: await self._dense_counts(pipe, slot, values) for slot, values in by_slot.items()}
        gone = [m for m in forget if directory_entry(m) not in later]
        people = keys.people(self._namespace, brand_id)
        raws = [await pipe.hget(people, str(m)) for m in gone]
        pipe.multi()
        for slot, values in by_slot.items():
            self._queue_dense(pipe, slot, values, counts[slot])
        for write in kept:
            if write.slot.board.ties != "dense":
                self._queue_standing(pipe, write)
        for entry in listings:
            if directory_entry(entry.member_id) not in later:
                self._queue_listing(pipe, entry)
        for member_id, raw in zip(gone, raws, strict=True):
            self._queue_forget(pipe, brand_id, member_id, raw)

    # --- whole keys ----------------------------------------------------------------------------------

    def filler(self, slot: Slot) -> SlotFiller:
        """A :class:`SlotFiller` that makes ``slot`` hold exactly what is added to it, chunk by chunk."""
        return SlotFiller(self, slot)

    # RENAME is queued with execute_command: redis-py's cluster pipeline refuses its ``rename`` method even
    # inside MULTI, though both keys are in the brand's slot (the server checks that).

    async def replace(self, slot: Slot, entries: Sequence[tuple[int, float]], *, ttl: int | None = None) -> None:
        """Make ``slot`` hold exactly ``entries`` (member id, Redis score): filled aside, then renamed over it."""
        fill = self.filler(slot)
        for start in range(0, len(entries), REBUILD_CHUNK):
            await fill.add(entries[start : start + REBUILD_CHUNK])
        await fill.finish(ttl=ttl)

    async def add_directory(self, brand_id: int, entries: Sequence[Listing], *, into: str = "") -> None:
        """Write directory entries: into the live directory, or (``into`` = a token) its scratch copy."""
        values = [(e.member_id, e.external_id, e.encoded()) for e in entries]
        await self.add_directory_values(brand_id, values, into=into)

    async def add_directory_values(
        self, brand_id: int, values: Sequence[tuple[int, str, bytes]], *, into: str = ""
    ) -> None:
        """:meth:`add_directory` of (member id, external id, encoded value) triples, as a rebuild streams them."""
        targets = self.directory_keys(brand_id)
        ids, people = [keys.temporary(k, into) for k in targets] if into else targets
        async with self._redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(values), REBUILD_CHUNK):
                chunk = values[start : start + REBUILD_CHUNK]
                pipe.hset(ids, mapping={external_id: member_id for member_id, external_id, _ in chunk})
                pipe.hset(people, mapping={member_id: value for member_id, _, value in chunk})
            if into:  # a rebuild that fails leaves no scratch copy behind for long
                pipe.expire(ids, SCRATCH_SECONDS)
                pipe.expire(people, SCRATCH_SECONDS)
            await pipe.execute()

    async def swap_directory(self, brand_id: int, token: str, *, filled: bool) -> None:
        """Rename the directory's scratch copy (written with ``into=token``) over it; ``filled=False``: empty it."""
        targets = self.directory_keys(brand_id)
        async with (await self._transactions(brand_id)).pipeline(transaction=True) as pipe:
            for target in targets:
                if filled:
                    pipe.execute_command("RENAME", keys.temporary(target, token), target)
                    pipe.persist(target)  # the scratch copy's expiry came with it
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

    async def mark_board_ready(self, brand_id: int, boards: Sequence[str]) -> None:
        """Write the boards' sentinels (a rebuild does, last)."""
        if not boards:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for board in boards:
                pipe.set(keys.board_ready(self._namespace, brand_id, board), b"1")
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
        async with (await self._transactions(brand_id)).pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                held = await pipe.get(key)
                pipe.multi()  # type: ignore[no-untyped-call]
                if held is not None and text(held) == token:
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

    async def dump(self, pattern: str) -> dict[str, Any]:
        """Every matching key with its full content (sorted sets with scores, hashes, strings); for checks."""
        content: dict[str, Any] = {}
        for name in sorted(await self.scan(pattern)):
            kind = text(await self._redis.type(name))
            if kind == "zset":
                content[name] = await self._redis.zrange(name, 0, -1, withscores=True)
            elif kind == "hash":
                content[name] = dict(sorted((await self._redis.hgetall(name)).items()))
            else:
                content[name] = await self._redis.get(name)
        return content


class SlotFiller:
    """Fills a slot's keys aside in bounded chunks (one round trip each), then renames them over the live ones.

    A rebuild streams a period's totals from SQL through this, so neither side ever holds a whole board:
    the client keeps one chunk (and, for a dense board, a count per distinct score).
    """

    def __init__(self, store: StoreMaintenance, slot: Slot) -> None:
        self._store = store
        self._targets = store.slot_keys(slot)
        self._brand_id = slot.brand_id
        token = secrets.token_hex(6)
        self._temps = [keys.temporary(k, token) for k in self._targets]
        self._dense = slot.board.ties == "dense"
        self._counts: dict[int, int] = {}
        self.members = 0

    async def add(self, entries: Sequence[tuple[int, float]]) -> None:
        """Add (member id, Redis score) pairs: one ``ZADD`` per chunk of :data:`REBUILD_CHUNK`."""
        if not entries:
            return
        self.members += len(entries)
        if self._dense:
            for _member_id, score in entries:
                self._counts[int(score)] = self._counts.get(int(score), 0) + 1
        redis = self._store.redis
        for start in range(0, len(entries), REBUILD_CHUNK):
            chunk = entries[start : start + REBUILD_CHUNK]
            await redis.zadd(self._temps[0], {ranking.member_token(m): s for m, s in chunk})

    async def finish(self, *, ttl: int | None = None) -> None:
        """Rename the filled keys over the live ones in one ``MULTI`` (delete them when nothing was added)."""
        redis = self._store.redis
        if self._dense and self._counts:
            values = sorted(self._counts)
            async with redis.pipeline(transaction=False) as pipe:
                for start in range(0, len(values), REBUILD_CHUNK):
                    chunk = values[start : start + REBUILD_CHUNK]
                    pipe.zadd(self._temps[1], {str(v): float(v) for v in chunk})
                    pipe.hset(self._temps[2], mapping={str(v): self._counts[v] for v in chunk})
                await pipe.execute()
        brand = await self._store._transactions(self._brand_id)
        async with brand.pipeline(transaction=True) as pipe:
            for target, temp in zip(self._targets, self._temps, strict=True):
                if self.members:
                    pipe.execute_command("RENAME", temp, target)
                    if ttl is not None:
                        pipe.expire(target, ttl)
                else:
                    pipe.delete(target)
            await pipe.execute()

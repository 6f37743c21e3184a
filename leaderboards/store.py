"""BoardStore: the Redis projection of the boards, one sorted set per (brand, board, period, scope).

Writes are absolute (``ZADD`` of a member's total, never ``ZINCRBY``) inside ``MULTI``, so replaying an
update is harmless. Dense boards also keep the set of distinct scores with a per-score count; that is a
read-then-write, done under ``WATCH``. The brand keeps one member directory for all its boards
(external id → member, member → name and display preference), written with the totals, which the read
path resolves members and labels with.

A read is one Lua script (:data:`leaderboards.scripts.READ_SCRIPT`, ``EVALSHA``) over the board's keys
and the brand's directory (one hash tag: one slot in a cluster): one consistent snapshot in one round trip; the reads in flight together are pipelined
(:class:`leaderboards.script_batch.ScriptBatch`). Every key comes from :mod:`leaderboards.keys`. The commands
writes queue are in :mod:`leaderboards.queued`, the rebuild's upkeep in :mod:`leaderboards.maintenance`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from engine.buckets import Charge, Refused
from engine.redisconn import is_cluster, queue_messages
from leaderboards import keys, ranking
from leaderboards.maintenance import StoreMaintenance
from leaderboards.script_batch import ScriptBatch
from leaderboards.scripts import ANNOUNCE_SCRIPT, FIND_SCRIPT, GATED_READ_SCRIPT, READ_SCRIPT, decode_read
from leaderboards.slots import (
    PERSON,
    Listing,
    PersonValue,
    Slot,
    Snapshot,
    Write,
    directory_entry,
    write_entry,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio import Redis

    from leaderboards.live import LiveMessage


class BoardStore(StoreMaintenance):
    """Derived leaderboard standings in Redis sorted sets; rebuildable from the SQL totals."""

    def __init__(self, redis: Redis, *, namespace: str = "ql") -> None:
        super().__init__(redis, namespace=namespace)
        # Script objects: each call is an EVALSHA (the script is loaded again only after a flush); the
        # reads in flight together share one pipeline.
        self._read_script = ScriptBatch(redis, redis.register_script(READ_SCRIPT))
        self._gated_read_script = ScriptBatch(redis, redis.register_script(GATED_READ_SCRIPT))
        self._find_script = redis.register_script(FIND_SCRIPT)

    @property
    def redis(self) -> Redis:
        """The client the store writes through (post-commit PUBLISHes share its round trip)."""
        return self._redis

    # --- writes --------------------------------------------------------------------------------------

    async def apply(
        self, writes: Sequence[Write], *, listings: Sequence[Listing] = ()
    ) -> tuple[bool, list[tuple[int, int] | None]]:
        """Write absolute totals; returns (brand sentinels present, each write's (new rank, board size) or ``None``).

        All non-dense writes, the members' directory entries (``listings``) and the rank reads go in one
        ``MULTI`` round trip.
        """
        applied = await self.apply_and_announce(writes, listings=listings)
        return applied.ready, applied.ranks

    @property
    def announces(self) -> bool:
        """Whether :meth:`apply_and_announce` publishes in its own round trip.

        Not on a Redis Cluster, whose sharded channels a script cannot reach.
        """
        return not is_cluster(self._redis)

    async def apply_and_announce(
        self,
        writes: Sequence[Write],
        *,
        listings: Sequence[Listing] = (),
        live: Sequence[LiveMessage] = (),
        messages: Sequence[tuple[str, bytes]] = (),
    ) -> Applied:
        """:meth:`apply`, publishing ``live`` messages with the ranks read and ``messages`` in the same ``MULTI``.

        ``live`` messages show ranks of ``writes`` (:class:`leaderboards.live.LiveMessage`); one whose member
        is not on its board is left out (``Applied.announced``). Without :attr:`announces`, nothing is
        published: the caller publishes.

        Raises:
            ValueError: ``messages`` without board writes to carry them, or where the store does not announce.
        """
        if messages and not self.announces:
            raise ValueError("this store does not publish: send the messages on their own")
        if not writes and not listings:
            if messages:
                raise ValueError("messages ride with board writes: give writes or listings")
            return Applied(ready=True, ranks=[], announced=[False] * len(live))
        brand_ids = sorted({w.slot.brand_id for w in writes})
        dense = [w for w in writes if w.slot.board.ties == "dense"]
        if dense:
            await self._apply_dense(dense)
        plain = [w for w in writes if w.slot.board.ties != "dense"]
        listed = [w for w in writes if w.listed]
        announce = self.announces and bool(live or messages)
        # One brand per unit of work: the MULTI stays in the brand's slot (Redis Cluster).
        brand = await self._transactions(brand_ids[0] if brand_ids else listings[0].brand_id)
        async with brand.pipeline(transaction=True) as pipe:
            for brand_id in brand_ids:
                pipe.exists(keys.ready(self._namespace, brand_id))
            for brand_id, entries in _log_entries(plain, listings).items():
                self._queue_log(pipe, brand_id, entries)
            self._queue_listings(pipe, listings)
            self._queue_standings(pipe, plain)
            script_at = len(pipe)
            if announce:
                pipe.eval(ANNOUNCE_SCRIPT, *self._announce_args(writes, live))
                queue_messages(pipe, self._redis, messages)  # after the script: its message first
            else:
                for write in listed:
                    self._queue_rank(pipe, write.slot, write.member_id, write.units)
                    pipe.zcard(self.key(write.slot))
            replies = await pipe.execute()
        ready = all(bool(r) for r in replies[: len(brand_ids)])
        if announce:
            return _announced(ready, writes, replies[script_at], len(live))
        tail = replies[len(replies) - 2 * len(listed) :]
        return Applied(ready=ready, ranks=_ranks(writes, tail), announced=[False] * len(live))

    def _announce_args(self, writes: Sequence[Write], live: Sequence[LiveMessage]) -> list[Any]:
        """``numkeys``, keys and arguments of :data:`ANNOUNCE_SCRIPT` for the listed ``writes`` and ``live``."""
        keys_: list[str] = []
        reads: list[bytes] = []
        number: dict[int, int] = {}  # a write's index → its rank's (1-based) among the script's
        for index, write in enumerate(writes):
            if write.listed:
                kind, key, arg = self._rank_read(write.slot, write.member_id, write.units)
                keys_ += [key, self.key(write.slot)]
                reads.append(kind.encode() + arg)
                number[index] = len(reads)
        args: list[Any] = [len(reads), *reads]
        for message in live:
            try:
                shown = [number[index] for index in message.writes]
            except KeyError:
                raise ValueError("a live message shows a write that is not on its board") from None
            args += [message.channel, len(shown), *shown, *message.parts]
        return [len(keys_), *keys_, *args]

    async def remove(self, slots: Sequence[Slot], member_id: int) -> None:
        """Take a member off the given slots."""
        writes = [Write(slot=s, member_id=member_id, units=0, reached_at=ranking.EPOCH, listed=False) for s in slots]
        await self.apply(writes)

    async def forget_member(self, brand_id: int, member_id: int) -> None:
        """Take a member out of the brand's directory (their external id and what labels are made of)."""
        raw = await self._redis.hget(keys.people(self._namespace, brand_id), str(member_id))
        async with (await self._transactions(brand_id)).pipeline(transaction=True) as pipe:
            self._queue_log(pipe, brand_id, [directory_entry(member_id)])
            self._queue_forget(pipe, brand_id, member_id, raw)
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
        charge: Charge | None = None,
    ) -> Snapshot | None:
        """A page of the top, a member's rank with ±``k`` neighbours, friends' ranks, and the labels to show them.

        One round trip: a Lua script (EVALSHA) resolves the external ids through the brand's directory,
        reads the standings and ranks every row by the board's tie policy inside Redis, so the answer is
        one consistent snapshot. Members are named by external id (``around``, ``friends``). With a
        ``charge`` the same call first takes a token from that bucket (in the brand's slot) and records
        the answer on it; an empty bucket reads nothing.

        Returns:
            The snapshot, or ``None`` when the board's sentinel is missing (Redis lost its data).

        Raises:
            Refused: the charge's bucket was empty.
        """
        board = slot.board
        zkey = self.key(slot)
        dkey = self._dense_keys(slot)[0] if board.ties == "dense" else zkey
        ids, people = self.directory_keys(slot.brand_id)
        read_keys = [zkey, dkey, ids, people, keys.board_ready(self._namespace, slot.brand_id, board.key)]
        args = [offset, limit, k, board.ties, around or "", *friends]
        if charge is None:
            reply = await self._read_script(keys=read_keys, args=args)
        else:
            gated = await self._gated_read_script(
                keys=[*read_keys, charge.bucket], args=[charge.rate, charge.burst, *args]
            )
            charge.settle(gated[0], gated[1])
            if not charge.allowed:
                raise Refused(charge)
            reply = gated[2]
        return decode_read(slot, reply, offset=offset, friends=friends)

    async def find_member(self, brand_id: int, external_id: str) -> tuple[int, PersonValue] | None:
        """A member of the brand's directory by external id: (member id, their entry), or ``None``."""
        reply = await self._find_script(keys=self.directory_keys(brand_id), args=[external_id])
        if not reply or reply[1] is None:
            return None
        return int(reply[0]), PERSON.decode(reply[1])


def _log_entries(writes: Sequence[Write], listings: Sequence[Listing]) -> dict[int, list[bytes]]:
    """The rebuild-log entries of ``listings`` and ``writes``, by brand."""
    logged: dict[int, list[bytes]] = {}
    for entry in listings:
        logged.setdefault(entry.brand_id, []).append(directory_entry(entry.member_id))
    for write in writes:
        logged.setdefault(write.slot.brand_id, []).append(write_entry(write))
    return logged


class Applied(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`BoardStore.apply_and_announce` did."""

    ready: bool
    """Whether the brands' sentinels were there (``False``: Redis lost its data)."""
    ranks: list[tuple[int, int] | None]
    """Each write's (new rank, board size), ``None`` for one not on its board."""
    announced: list[bool]
    """Each live message: published (``False``: the caller publishes it, or what is left of it)."""


def _announced(ready: bool, writes: Sequence[Write], reply: Sequence[Any], messages: int) -> Applied:
    """:data:`ANNOUNCE_SCRIPT`'s reply: the listed writes' ranks, then their sizes, then a flag per message."""
    listed = sum(1 for w in writes if w.listed)
    found = iter(zip(reply[:listed], reply[listed : 2 * listed], strict=True))
    ranks: list[tuple[int, int] | None] = []
    for write in writes:
        if not write.listed:
            ranks.append(None)
            continue
        rank, size = next(found)
        ranks.append(None if int(rank) < 0 else (int(rank), int(size)))
    flags = [bool(int(flag)) for flag in reply[2 * listed :]]
    if len(flags) != messages:
        raise RuntimeError(f"the announce script answered {len(flags)} messages of {messages}")
    return Applied(ready=ready, ranks=ranks, announced=flags)


def _ranks(writes: Sequence[Write], tail: Sequence[Any]) -> list[tuple[int, int] | None]:
    """Each write's (rank, board size) from the replies of the rank reads queued for the listed ones."""
    ranks: list[tuple[int, int] | None] = []
    index = 0
    for write in writes:
        if not write.listed:
            ranks.append(None)
            continue
        reply, size = tail[index], tail[index + 1]
        index += 2
        ranks.append(None if reply is None else (int(reply) + 1, int(size)))
    return ranks

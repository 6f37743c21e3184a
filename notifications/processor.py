"""The notifications pipeline step and the rank watcher that notices who was overtaken on a board.

Most notifications come from outbox messages (``notifications.feed``), so the step adds nothing to the
transaction and no round trip to the request: after commit it wakes the feed worker and hands the unit's
``RankChanged`` effects to the :class:`RankWatcher` (in memory). The worker flushes the watcher in batches:
it compares each member's new rank and score with those it last saw (a Redis hash per board period, one
round trip per batch); a member who climbed from rank 7 to rank 4 overtook those now listed right below
them whose score lies between the climber's old and new scores (at most :data:`MAX_PASSED` are told).
Reading who they are is a board read, done only when somebody actually climbed; a tie broken without a
change of the climber's rank is not reported. The watcher's queue is derived, best-effort state: a crash
loses at most the "overtaken" notices of the last moments.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select

from engine.effects import RankChanged
from engine.orm import MemberRow
from notifications.feed import insert_rows, new_row
from notifications.models import controls_of

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from redis.asyncio import Redis

    from engine.db import Database
    from engine.pipeline import UnitOfWork
    from engine.tenants import Brand

log = logging.getLogger(__name__)

MAX_PASSED = 3
#: A board period's memo of ranks expires this long after its last change.
MEMO_SECONDS = 40 * 24 * 3600
#: Rank changes waiting for the worker (the oldest are dropped beyond this).
QUEUE_SIZE = 10_000


class Neighbours(Protocol):
    """Who stands just below a rank on a board period (the leaderboards package answers, through ``web``)."""

    async def below(
        self, brand: Brand, *, board: str, period: str, scope: str, rank: int, count: int
    ) -> list[tuple[str, int, float]]:
        """``(member external id, rank, score)`` of the ``count`` members listed right after ``rank``."""
        ...


@dataclass(frozen=True, slots=True)
class _Seen:
    brand: Brand
    member: str
    member_id: int
    change: RankChanged
    at: datetime


def memo_key(namespace: str, brand_id: int, change: RankChanged) -> str:
    """The Redis hash of last seen ranks of one board period and scope."""
    return f"{namespace}:notif:rank:{{b{brand_id}}}:{change.board}:{change.period}:{change.scope}"


class RankWatcher:
    """Rank changes in, "overtaken" notifications out (flushed by the worker)."""

    def __init__(self, redis: Redis, *, namespace: str, neighbours: Neighbours) -> None:
        self.redis = redis
        self.namespace = namespace
        self.neighbours = neighbours
        self._queue: deque[_Seen] = deque(maxlen=QUEUE_SIZE)

    def note(self, uow: UnitOfWork) -> None:
        """Queue the unit's rank changes (when the brand has ``overtaken`` on)."""
        if "overtaken" not in controls_of(uow.brand.settings).enabled:
            return
        for ctx in uow.events:
            for effect in ctx.effects:
                if isinstance(effect, RankChanged):
                    self._queue.append(_Seen(uow.brand, ctx.event.member, ctx.member_id, effect, uow.now))

    async def flush(self, db: Database) -> set[tuple[int, int]]:
        """Record who was overtaken by the queued changes; answers the ``(brand, member)`` pairs told."""
        seen = list(self._queue)
        self._queue.clear()
        if not seen:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in seen:
                key = memo_key(self.namespace, item.brand.id, item.change)
                pipe.hget(key, str(item.member_id))
                pipe.hset(key, str(item.member_id), f"{item.change.rank}:{item.change.score}")
                pipe.expire(key, MEMO_SECONDS)
            replies = await pipe.execute()
        touched: set[tuple[int, int]] = set()
        for index, item in enumerate(seen):
            before = replies[index * 3]
            if before is None:
                continue
            rank, _, score = (before.decode() if isinstance(before, bytes) else str(before)).partition(":")
            if rank.isdigit() and int(rank) > item.change.rank:
                touched |= await self._passed(db, item, int(rank), float(score or 0))
        return touched

    async def _passed(self, db: Database, item: _Seen, before: int, old_score: float) -> set[tuple[int, int]]:
        change = item.change
        passed = await self.neighbours.below(
            item.brand, board=change.board, period=change.period, scope=change.scope, rank=change.rank,
            count=min(before - change.rank + 1, MAX_PASSED),
        )  # fmt: skip
        wanted = {
            external_id: {"board": change.board, "rank": rank, "by_rank": change.rank}
            for external_id, rank, score in passed
            if external_id != item.member and old_score <= score < change.score
        }
        if not wanted:
            return set()
        source = f"r{change.board}:{change.period}:{change.scope}:{item.member}:{change.rank}"
        async with db.write() as session:
            found = await session.execute(
                select(MemberRow.external_id, MemberRow.id).where(
                    MemberRow.brand_id == item.brand.id, MemberRow.external_id.in_(list(wanted))
                )
            )
            values = [
                new_row(
                    brand_id=item.brand.id,
                    member_id=int(i),
                    kind="overtaken",
                    source=source,
                    data=wanted[e],
                    now=item.at,
                )
                for e, i in found
            ]
            return await insert_rows(session, values)


class NotificationsStep:
    """Pipeline step: after commit, hand rank changes to the watcher and wake the feed worker (no I/O)."""

    name = "notifications"

    def __init__(self, *, watcher: RankWatcher | None = None, wake: Callable[[], None] | None = None) -> None:
        self.watcher = watcher
        self.wake = wake

    async def process(self, uow: UnitOfWork) -> None:
        """Nothing inside the transaction: the outbox rows the other steps write are the feed's source."""

    async def after_commit(self, uow: UnitOfWork) -> None:
        """Queue the unit's rank changes and wake the worker."""
        if self.watcher is not None:
            self.watcher.note(uow)
        if self.wake is not None:
            self.wake()

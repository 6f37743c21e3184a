"""The notifications pipeline step: wakes the feed after a commit and notices who was overtaken on a board.

Most notifications come from outbox messages (``notifications.feed``), so the step adds nothing to the
transaction. After commit it wakes the feed worker, and for every ``RankChanged`` it compares the member's
new rank and score with those it last saw (a Redis hash per board period, one round trip for the whole
unit of work): a member who climbed from rank 7 to rank 4 overtook those now listed right below them whose
score lies between the climber's old and new scores (at most :data:`MAX_PASSED` of them are told). Reading
who they are is a board read, done only when somebody actually climbed; a tie broken without a change of
the climber's rank is not reported.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select

from engine.effects import RankChanged
from engine.keys import member_channel
from engine.orm import MemberRow
from notifications.feed import insert_rows, new_row
from notifications.models import controls_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from redis.asyncio import Redis

    from engine.pipeline import EventContext, UnitOfWork
    from engine.tenants import Brand

log = logging.getLogger(__name__)

MAX_PASSED = 3
#: A board period's memo of ranks expires this long after its last change.
MEMO_SECONDS = 40 * 24 * 3600


class Neighbours(Protocol):
    """Who stands just below a rank on a board period (the leaderboards package answers, through ``web``)."""

    async def below(
        self, brand: Brand, *, board: str, period: str, scope: str, rank: int, count: int
    ) -> list[tuple[str, int, float]]:
        """``(member external id, rank, score)`` of the ``count`` members listed right after ``rank``."""
        ...


def memo_key(namespace: str, brand_id: int, change: RankChanged) -> str:
    """The Redis hash of last seen ranks of one board period and scope."""
    return f"{namespace}:notif:rank:{{b{brand_id}}}:{change.board}:{change.period}:{change.scope}"


class NotificationsStep:
    """Pipeline step: after commit, wake the feed worker and record who was overtaken."""

    name = "notifications"

    def __init__(
        self,
        redis: Redis,
        *,
        namespace: str,
        neighbours: Neighbours | None = None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.redis = redis
        self.namespace = namespace
        self.neighbours = neighbours
        self.wake = wake

    async def process(self, uow: UnitOfWork) -> None:
        """Nothing inside the transaction: the outbox rows the other steps write are the feed's source."""

    async def after_commit(self, uow: UnitOfWork) -> None:
        """Wake the feed worker; notify the members a climbing member passed."""
        if self.wake is not None:
            self.wake()
        if self.neighbours is None or "overtaken" not in controls_of(uow.brand.settings).enabled:
            return
        changes = [(ctx, e) for ctx in uow.events for e in ctx.effects if isinstance(e, RankChanged)]
        if not changes:
            return
        try:
            climbed = await self._climbed(uow, changes)
            if climbed:
                await self._record(uow, climbed)
        except Exception:  # derived and best effort: a lost "overtaken" never blocks the event
            log.exception("overtaken notifications failed")

    async def _climbed(
        self, uow: UnitOfWork, changes: list[tuple[EventContext, RankChanged]]
    ) -> list[tuple[str, RankChanged, int, float]]:
        """``(climber, change, previous rank, previous score)`` of members whose rank improved."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for ctx, change in changes:
                key = memo_key(self.namespace, uow.brand.id, change)
                member = str(ctx.member_id)
                pipe.hget(key, member)
                pipe.hset(key, member, f"{change.rank}:{change.score}")
                pipe.expire(key, MEMO_SECONDS)
            replies = await pipe.execute()
        climbed = []
        for index, (ctx, change) in enumerate(changes):
            before = replies[index * 3]
            if before is None:
                continue
            rank, _, score = (before.decode() if isinstance(before, bytes) else str(before)).partition(":")
            if rank.isdigit() and int(rank) > change.rank:
                climbed.append((ctx.event.member, change, int(rank), float(score or 0)))
        return climbed

    async def _record(self, uow: UnitOfWork, climbed: list[tuple[str, RankChanged, int, float]]) -> None:
        assert self.neighbours is not None
        wanted: list[tuple[str, str, dict[str, object]]] = []  # external id, source, data
        for by, change, before, old_score in climbed:
            passed = await self.neighbours.below(
                uow.brand, board=change.board, period=change.period, scope=change.scope, rank=change.rank,
                count=min(before - change.rank + 1, MAX_PASSED),
            )  # fmt: skip
            for external_id, rank, score in passed:
                if external_id == by or not old_score <= score < change.score:
                    continue
                source = f"r{change.board}:{change.period}:{change.scope}:{by}:{change.rank}"
                wanted.append((external_id, source, {"board": change.board, "rank": rank, "by_rank": change.rank}))
        if not wanted:
            return
        async with uow.db.write() as session:
            found = dict(
                (e, int(i))
                for e, i in await session.execute(
                    select(MemberRow.external_id, MemberRow.id).where(
                        MemberRow.brand_id == uow.brand.id, MemberRow.external_id.in_({w[0] for w in wanted})
                    )
                )
            )
            values = [
                new_row(brand_id=uow.brand.id, member_id=found[e], kind="overtaken", source=s, data=d, now=uow.now)
                for e, s, d in wanted
                if e in found
            ]
            touched = await insert_rows(session, values)
        for brand_id, member_id in touched:
            uow.publish(self.redis, member_channel(self.namespace, brand_id, member_id), b'{"notification":true}')

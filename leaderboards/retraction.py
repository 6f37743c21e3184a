"""Leaderboards' part of a retraction: take the event's contribution off the member's totals, then Redis.

For every active ``increment`` board the event counted on (same filter, period and scope rules as the
pipeline step), the retracted share of its contribution is subtracted from the SQL total in the period the
event occurred in (a closed period's archive is left as it was paid out). An ``event_count`` board takes
the event off only when it is retracted whole; ``points`` metrics count the event's own (earning-rule)
points. After the commit the new absolute totals are written to Redis (a rank is recomputed there), or
the brand is marked stale for the catch-up when Redis does not answer. ``best``/``latest`` boards keep
their score: a best or latest score is not a sum an event can be taken out of; ``challenge_completions``
boards keep their count (a completion clawed back under the policy is not taken off a board).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from redis.exceptions import RedisError

from engine.effects import ChallengeCompleted, PointsAwarded
from engine.retraction_models import Undone
from leaderboards import people_repo, ranking, repository, totals_repo
from leaderboards.models import EventCountMetric, Total
from leaderboards.slots import Slot, Write, listing

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.retraction_models import RetractedEvent
    from leaderboards.models import BoardDef
    from leaderboards.service import Leaderboards


async def _reduction(
    session: AsyncSession, board: BoardDef, target: RetractedEvent, own: list[Any]
) -> tuple[Total, Any] | None:
    """The negative total a retraction takes off one ``increment`` board, with its period (None: nothing to take)."""
    event, brand = target.event, target.brand
    if board.mode != "increment":
        return None
    units = ranking.contribution(
        board, event_type=event.type, properties=event.properties, member=target.member, effects=own
    )
    if not units:
        return None
    if isinstance(board.metric, EventCountMetric):
        removed = units if target.whole else 0
    else:
        removed = round(units * target.share_after) - round(units * target.share_before)
    period = ranking.period_for(board, event.occurred_at, brand.tz)
    scope = ranking.scope_of(board, target.member)
    if not removed or period is None or scope is None:
        return None
    if await repository.closed_among(session, pairs={(board.id, period.id)}):
        return None  # a closed period's archive is history
    total = Total(
        board_id=board.id, period=period.id, scope=scope, member_id=target.member_id, units=-removed,
        reached_at=event.occurred_at,
    )  # fmt: skip
    return total, period


class BoardsUndo:
    """:class:`engine.grants.EventUndo` for leaderboards."""

    name = "leaderboards"

    def __init__(self, runtime: Leaderboards) -> None:
        self._runtime = runtime

    async def undo(self, session: AsyncSession, target: RetractedEvent) -> Undone:
        """Subtract the retracted share of the event's contribution from each board it counted on."""
        brand = target.brand
        boards = [b for b in await repository.load_boards(session, brand_id=brand.id) if b.active]
        # The event's own points; completions and their rewards are the challenges' undo's (and policy's) matter.
        own = [
            e
            for e in target.effects
            if not isinstance(e, ChallengeCompleted) and (not isinstance(e, PointsAwarded) or e.source == "rule")
        ]
        rows: list[tuple[BoardDef, Total, Any]] = []
        for board in boards:
            found = await _reduction(session, board, target, own)
            if found is not None:
                rows.append((board, *found))
        if not rows:
            return Undone()
        results = await totals_repo.upsert_totals(
            session, brand_id=brand.id, family="increment", rows=[t for _, t, _ in rows], now=target.now
        )
        infos = await people_repo.member_infos(session, brand_id=brand.id, member_ids=[target.member_id])
        info = infos.get(target.member_id)
        hidden: set[int] = {int(target.member_id)} if info is not None and info.opt_out else set()
        writes: list[Write] = []
        report: list[dict[str, Any]] = []
        by_total = {(r.board_id, r.period, r.scope): r for r in results}
        for board, asked, period in rows:
            result = by_total[(asked.board_id, asked.period, asked.scope)]
            slot = Slot(brand_id=brand.id, board=board, period=period, scope=result.scope)
            listed = ranking.is_listed(board, units=result.units, member_id=target.member_id, hidden=hidden)
            writes.append(
                Write(
                    slot=slot,
                    member_id=target.member_id,
                    units=result.units,
                    reached_at=result.reached_at,
                    listed=listed,
                )
            )
            report.append(
                {"board": board.key, "period": period.id, "score": ranking.display_score(board, result.units)}
            )
        listings = [listing(brand.id, info)] if info is not None and rows else []  # one directory per brand
        runtime = self._runtime

        async def to_redis() -> None:
            if runtime.breaker.is_open:
                runtime.catch_up.mark(brand.id)
                return
            try:
                await runtime.store.apply(writes, listings=listings)
            except RedisError as exc:
                runtime.catch_up.mark(brand.id, exc)

        return Undone(report={"boards": msgspec.to_builtins(report)}, after_commit=[to_redis])

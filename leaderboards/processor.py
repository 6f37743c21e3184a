"""The pipeline step: events and earlier effects → per-period totals in SQL → absolute ZADD after commit.

Inside the event's transaction the step folds each new event into the totals of every board it counts
for (one upsert statement per board mode), in the period the event *occurred* in (late events land in
their own period unless it is already closed), and emits ``BoardTotalChanged``. After commit it writes
those absolute totals to Redis, reads the members' new ranks into ``RankChanged`` effects (the response
is built afterwards, so an app can celebrate at once) and publishes them for live widgets.

Redis is derived state: when it does not answer (or its circuit breaker is open) the step marks the
brand's boards stale and returns at once, and :mod:`leaderboards.catchup` rebuilds them when it is back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeAlias

from redis.exceptions import RedisError

from engine.db import on_postgres
from engine.effects import BoardTotalChanged, RankChanged
from leaderboards import keys, people_repo, ranking, repository, totals_repo
from leaderboards.live import LiveMessage, Shown, live_message
from leaderboards.models import BoardDef, MemberInfo, PeriodRef, PeriodState, Total
from leaderboards.slots import Listing, Slot, Write, listing

if TYPE_CHECKING:
    from engine.pipeline import EventContext, UnitOfWork
    from leaderboards.service import Leaderboards

log = logging.getLogger(__name__)
STASH = "leaderboards"
CLOCK_SKEW = timedelta(minutes=1)
"""Periods ending this close to now are checked for a concurrent close, in case workers' clocks differ."""


@dataclass(slots=True)
class Change:
    """A total this unit of work changed, carried to the post-commit step."""

    slot: Slot
    member_id: int
    units: int
    reached_at: datetime
    listed: bool
    ctx: EventContext


class LeaderboardsProcessor:
    """Keeps board totals in SQL with the events, and Redis in step after commit."""

    name = "leaderboards"

    def __init__(self, runtime: Leaderboards) -> None:
        self.runtime = runtime
        self._known_periods: set[tuple[int, str]] = set()

    async def process(self, uow: UnitOfWork) -> None:
        """Fold the unit's events into board totals (one upsert per board mode) and emit the new totals."""
        boards = await self.runtime.boards_at(uow.session, uow.brand.id, await uow.config_version())
        active = [b for b in boards if b.active]
        if not active:
            return
        merged, periods = _fold(active, uow)
        if not merged:
            return
        by_id = {b.id: b for b in active}
        closed = await self._closed(uow, by_id, periods)
        if closed:
            merged = {k: v for k, v in merged.items() if (k[0], k[1]) not in closed}
        await self._ensure_periods(uow, periods, closed)
        # With the totals, what the brand's directory shows of their members (ids, names, preferences) and
        # the opt-outs: in the upsert's own statement on PostgreSQL, one query after it elsewhere.
        results, infos = await _upsert(uow, by_id, merged)
        hidden = {m for m, info in infos.items() if info.opt_out}
        listings: dict[int, Listing] = {}
        changes: list[Change] = []
        for total in results:
            board = by_id[total.board_id]
            info = infos.get(total.member_id)
            if info is not None:
                listings[total.member_id] = listing(uow.brand.id, info)
            ctx = merged[(total.board_id, total.period, total.scope, total.member_id)][2]
            slot = Slot(brand_id=uow.brand.id, board=board, period=periods[(board.id, total.period)], scope=total.scope)
            changes.append(
                Change(
                    slot=slot,
                    member_id=total.member_id,
                    units=total.units,
                    reached_at=total.reached_at,
                    listed=ranking.is_listed(board, units=total.units, member_id=total.member_id, hidden=hidden),
                    ctx=ctx,
                )
            )
            ctx.emit(
                BoardTotalChanged(
                    board=board.key,
                    period=total.period,
                    score=ranking.display_score(board, total.units),
                    scope=total.scope,
                )
            )
        uow.stash[STASH] = changes
        uow.stash[STASH + ".listings"] = list(listings.values())

    async def _closed(
        self, uow: UnitOfWork, boards: dict[int, BoardDef], periods: dict[tuple[int, str], PeriodRef]
    ) -> set[tuple[int, str]]:
        """Periods already closed among those a close could be racing (ended before now + skew)."""
        suspect = {
            pair
            for pair, period in periods.items()
            if period.ends_at is not None
            and period.ends_at + timedelta(minutes=boards[pair[0]].grace_minutes) <= uow.now + CLOCK_SKEW
        }
        return await repository.closed_among(uow.session, pairs=suspect)

    async def _ensure_periods(
        self, uow: UnitOfWork, periods: dict[tuple[int, str], PeriodRef], closed: set[tuple[int, str]]
    ) -> None:
        fresh = [
            PeriodState(board_id=pair[0], period=pair[1], starts_at=period.starts_at, ends_at=period.ends_at)
            for pair, period in periods.items()
            if pair not in self._known_periods and pair not in closed
        ]
        if not fresh:
            return
        await repository.ensure_periods(uow.session, brand_id=uow.brand.id, periods=fresh)
        if len(self._known_periods) > 100_000:
            self._known_periods.clear()
        # Remembered only once committed work proves the rows exist; a rolled-back unit re-inserts them.
        uow.stash.setdefault(STASH + ".periods", []).extend((p.board_id, p.period) for p in fresh)

    async def after_commit(self, uow: UnitOfWork) -> None:
        """Write the changed absolute totals to Redis, report new ranks, publish them for live widgets."""
        self._known_periods.update(uow.stash.get(STASH + ".periods", []))
        changes: list[Change] = uow.stash.get(STASH, [])
        if not changes:
            return
        runtime = self.runtime
        if runtime.breaker.is_open:
            # Redis is down: no request waits on it. SQL has the totals; the boards catch up when it answers.
            runtime.catch_up.mark(uow.brand.id)
            return
        store = runtime.store
        writes = [
            Write(slot=c.slot, member_id=c.member_id, units=c.units, reached_at=c.reached_at, listed=c.listed)
            for c in changes
        ]
        # One message per board and unit of work (a batch moves hundreds of members on a board at once). Where
        # the store can, Redis fills in the ranks and publishes it, with the unit's other messages, in the
        # round trip of the writes; else it is queued with the unit's other messages.
        live = self._live_messages(uow, changes)
        messages = uow.take_publications(store.redis) if store.announces else []
        try:
            applied = await store.apply_and_announce(
                writes, listings=uow.stash.get(STASH + ".listings", []), live=live, messages=messages
            )
        except RedisError as exc:
            runtime.catch_up.mark(uow.brand.id, exc)
            for channel, payload in messages:  # tried again with the unit's other messages (a repeat only refreshes)
                uow.publish(store.redis, channel, payload)
            return
        if not applied.ready:
            # The brand's sentinel is gone: Redis lost its data. Repair in the background.
            self.runtime.schedule_rebuild(uow.brand.id)
        ranks = applied.ranks
        for change, placed in zip(changes, ranks, strict=True):
            if placed is None:
                continue
            rank, size = placed
            board = change.slot.board
            change.ctx.emit(
                RankChanged(
                    board=board.key,
                    period=change.slot.period.id,
                    rank=rank,
                    score=ranking.display_score(board, change.units),
                    scope=change.slot.scope,
                    total=size,
                )
            )
        for message, sent in zip(live, applied.announced, strict=True):
            if sent:
                continue
            numbers: list[tuple[int, int]] = []
            shown: list[tuple[int, Change]] = []
            for index in message.writes:
                placed = ranks[index]
                if placed is not None:  # None: a member the board no longer holds, left out of the message
                    numbers.append(placed)
                    shown.append((index, changes[index]))
            if numbers:
                again = message if len(numbers) == len(message.writes) else _live_message(runtime.namespace, uow, shown)
                uow.publish(store.redis, again.channel, again.filled(numbers))

    def _live_messages(self, uow: UnitOfWork, changes: list[Change]) -> list[LiveMessage]:
        """Each board's live message, shown changes in the unit's order (the listed ones: they have a rank)."""
        by_board: dict[str, list[tuple[int, Change]]] = {}
        for index, change in enumerate(changes):
            if change.listed:
                by_board.setdefault(change.slot.board.key, []).append((index, change))
        return [_live_message(self.runtime.namespace, uow, shown) for shown in by_board.values()]


Merged: TypeAlias = dict[tuple[int, str, str, int], tuple[int, datetime, "EventContext"]]
"""(board id, period id, scope, member id) → (units, reached at, the last event that changed it)."""


def _fold(boards: list[BoardDef], uow: UnitOfWork) -> tuple[Merged, dict[tuple[int, str], PeriodRef]]:
    """Every event's contribution to every board, merged per total by the board's mode (pure)."""
    merged: Merged = {}
    periods: dict[tuple[int, str], PeriodRef] = {}
    tz = uow.tz
    for ctx in uow.events:
        event = ctx.event
        for board in boards:
            units = ranking.contribution(
                board, event_type=event.type, properties=event.properties, member=ctx.member, effects=ctx.effects
            )
            if units is None:
                continue
            period = ranking.period_for(board, event.occurred_at, tz)
            scope = ranking.scope_of(board, ctx.member)
            if period is None or scope is None:
                continue
            key = (board.id, period.id, scope, ctx.member_id)
            current = merged.get(key)
            folded = ranking.merge(board, current[:2] if current else None, units, event.occurred_at)
            if folded is None:
                continue
            merged[key] = (folded[0], folded[1], ctx)
            periods[(board.id, period.id)] = period
    return merged, periods


async def _upsert(
    uow: UnitOfWork, by_id: dict[int, BoardDef], merged: Merged
) -> tuple[list[Total], dict[int, MemberInfo]]:
    """Write the merged contributions, one statement per board mode; returns the absolute totals and members."""
    families: dict[str, list[Total]] = {}
    for (board_id, period_id, scope, member_id), (units, reached_at, _ctx) in merged.items():
        families.setdefault(totals_repo.mode_family(by_id[board_id]), []).append(
            Total(
                board_id=board_id,
                period=period_id,
                scope=scope,
                member_id=member_id,
                units=units,
                reached_at=reached_at,
            )
        )
    results: list[Total] = []
    session, brand_id = uow.session, uow.brand.id
    if on_postgres(session):
        infos: dict[int, MemberInfo] = {}
        for family, rows in families.items():
            totals, people = await totals_repo.upsert_totals_with_people(
                session, brand_id=brand_id, family=family, rows=rows, now=uow.now
            )
            results.extend(totals)
            infos.update((member_id, people_repo.info_of(*row)) for member_id, row in people.items())
        return results, infos
    for family, rows in families.items():
        results.extend(
            await totals_repo.upsert_totals(session, brand_id=brand_id, family=family, rows=rows, now=uow.now)
        )
    return results, await people_repo.member_infos(
        session, brand_id=brand_id, member_ids=[t.member_id for t in results]
    )


def _live_message(namespace: str, uow: UnitOfWork, shown: list[tuple[int, Change]]) -> LiveMessage:
    """A board's live message of ``shown`` (write index, change), made before the ranks are known."""
    board = shown[0][1].slot.board
    return live_message(
        keys.live_channel(namespace, uow.brand.id, board.key),
        board.key,
        [
            (
                index,
                Shown(
                    period=change.slot.period.id,
                    scope=change.slot.scope,
                    member=change.ctx.event.member,
                    score=ranking.display_score(board, change.units),
                ),
            )
            for index, change in shown
        ],
        at=uow.now,
    )

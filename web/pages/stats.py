"""Dashboard figures from the engine's tables: events and active members per day, points issued.

Days are the brand's local days. PostgreSQL converts each timestamp with ``AT TIME ZONE``; SQLite has no
time zones, so the UTC offset is applied per stretch of time between the zone's transitions in the range
(a ``CASE`` over at most a few DST changes), which is exact too.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import case, distinct, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from badges import repository as badges_repo
from challenges import definitions as challenges_repo
from challenges.orm import CompletionRow
from engine.db import Database
from engine.ids import BrandId
from engine.orm import EventRow, LedgerRow, MemberRow
from engine.periods import local_day, local_midnight
from engine.texts import text_in


class DayCount(msgspec.Struct, frozen=True, kw_only=True):
    """A figure for one local day."""

    day: date
    value: float


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    """The dashboard's series and totals over a range of local days."""

    days: list[date]
    events: list[DayCount]
    active_members: list[DayCount]
    points_issued: list[DayCount]
    members_total: int
    events_total: int
    points_total: int
    active_total: int
    """Distinct members with at least one event in the range."""


def offset_segments(tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, timedelta]]:
    """``(from, utc offset)`` for each stretch of ``[start, end)`` with one offset, in order."""
    segments: list[tuple[datetime, timedelta]] = []
    cursor = start
    current = cursor.astimezone(tz).utcoffset() or timedelta(0)
    segments.append((cursor, current))
    while cursor < end:
        cursor += timedelta(minutes=30)
        offset = cursor.astimezone(tz).utcoffset() or timedelta(0)
        if offset != current:
            # Narrow down to the minute the offset changed.
            low = cursor - timedelta(minutes=30)
            while cursor - low > timedelta(minutes=1):
                middle = low + (cursor - low) / 2
                if (middle.astimezone(tz).utcoffset() or timedelta(0)) == current:
                    low = middle
                else:
                    cursor = middle
            cursor = cursor.replace(second=0, microsecond=0)
            segments.append((cursor, offset))
            current = offset
    return segments


def local_day_expr(db: Database, column: Any, tz: ZoneInfo, start: datetime, end: datetime) -> ColumnElement[Any]:
    """A SQL expression for the brand-local calendar day of ``column`` (a UTC timestamp)."""
    if db.is_postgres:
        return func.date(func.timezone(tz.key, column))
    segments = offset_segments(tz, start, end)

    def shifted(offset: timedelta) -> ColumnElement[Any]:
        return func.date(column, f"{int(offset.total_seconds() // 60):+d} minutes")

    if len(segments) == 1:
        return shifted(segments[0][1])
    whens = [(column < segments[i + 1][0], shifted(offset)) for i, (_, offset) in enumerate(segments[:-1])]
    return case(*whens, else_=shifted(segments[-1][1]))


def day_range(now: datetime, tz: ZoneInfo, days: int) -> list[date]:
    """The last ``days`` local days up to and including today."""
    today = local_day(now, tz)
    return [today - timedelta(days=days - 1 - i) for i in range(days)]


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _series(days: list[date], found: dict[date, float]) -> list[DayCount]:
    return [DayCount(day=d, value=found.get(d, 0.0)) for d in days]


async def _by_day(session: AsyncSession, query: Any) -> dict[date, float]:
    return {_as_date(day): float(value or 0) for day, value in await session.execute(query)}


async def _events_by_day(
    session: AsyncSession, db: Database, day: ColumnElement[Any], in_range: tuple[ColumnElement[bool], ...]
) -> tuple[dict[date, float], dict[date, float], int]:
    """Events and distinct members per day, and distinct members over the whole range.

    On PostgreSQL one scan of the range does all three (``GROUPING SETS``: per day, and the grand total,
    whose day is NULL); a big brand's 90 days are hundreds of thousands of rows, read once instead of
    three times. SQLite has no grouping sets: three queries.
    """
    if not db.is_postgres:
        counts = await _by_day(session, select(day, func.count()).where(*in_range).group_by(day))
        members = await _by_day(
            session, select(day, func.count(distinct(EventRow.member_id))).where(*in_range).group_by(day)
        )
        overall = await session.scalar(select(func.count(distinct(EventRow.member_id))).where(*in_range))
        return counts, members, int(overall or 0)
    query = (
        select(day, func.grouping(day), func.count(), func.count(distinct(EventRow.member_id)))
        .where(*in_range)
        .group_by(func.grouping_sets(tuple_(day), tuple_()))
    )
    events: dict[date, float] = {}
    active: dict[date, float] = {}
    total = 0
    for found_day, grand, count, distinct_members in await session.execute(query):
        if grand:
            total = int(distinct_members)
        else:
            events[_as_date(found_day)] = float(count)
            active[_as_date(found_day)] = float(distinct_members)
    return events, active, total


async def overview(db: Database, *, brand_id: BrandId, tz: ZoneInfo, now: datetime, days: int) -> Overview:
    """Events, active members and points issued per local day over the last ``days`` days."""
    span = day_range(now, tz, days)
    start = local_midnight(span[0], tz)
    end = local_midnight(span[-1] + timedelta(days=1), tz)
    day = local_day_expr(db, EventRow.occurred_at, tz, start, end)
    in_range = (EventRow.brand_id == brand_id, EventRow.occurred_at >= start, EventRow.occurred_at < end)
    async with db.replica() as session:  # statistics may lag: the read replica
        events, active, active_total = await _events_by_day(session, db, day, in_range)
        issued = await _by_day(
            session,
            select(LedgerRow.local_day, func.sum(LedgerRow.points))
            .where(
                LedgerRow.brand_id == brand_id,
                LedgerRow.points > 0,
                LedgerRow.local_day >= span[0],
                LedgerRow.local_day <= span[-1],
            )
            .group_by(LedgerRow.local_day),
        )
        members_total = await session.scalar(select(func.count()).where(MemberRow.brand_id == brand_id))
    return Overview(
        days=span,
        events=_series(span, events),
        active_members=_series(span, active),
        points_issued=_series(span, issued),
        members_total=int(members_total or 0),
        events_total=int(sum(events.values())),
        points_total=int(sum(issued.values())),
        active_total=active_total,
    )


class Labelled(msgspec.Struct, frozen=True, kw_only=True):
    """A labelled figure (a challenge's completions, a badge's rarity)."""

    key: str
    label: str
    value: float


async def completions(db: Database, *, brand_id: BrandId, since: datetime | None) -> list[Labelled]:
    """Completions per live challenge since ``since`` (ever, when ``None``), most first."""
    async with db.replica() as session:  # statistics may lag: the read replica
        stored = await challenges_repo.stored_challenges(session, brand_id=brand_id)
        conditions = [CompletionRow.brand_id == brand_id]
        if since is not None:
            conditions.append(CompletionRow.completed_at >= since)
        rows = await session.execute(
            select(CompletionRow.challenge_id, func.count()).where(*conditions).group_by(CompletionRow.challenge_id)
        )
        counts = {int(challenge_id): int(count) for challenge_id, count in rows}
    found = [
        Labelled(key=c.key, label=text_in(c.spec.get("title", c.key)) or c.key, value=float(counts.get(c.id, 0)))
        for c in stored
    ]
    return sorted(found, key=lambda item: (-item.value, item.label))


async def rarity(db: Database, *, brand_id: BrandId) -> list[Labelled]:
    """Each badge's holders as a percent of the brand's members, rarest first."""
    async with db.replica() as session:  # statistics may lag: the read replica
        badges = await badges_repo.load_badges(session, brand_id)
        holders, members = await badges_repo.holders(session, brand_id=brand_id)
    shares = badges_repo.rarity(holders, members)
    found = [Labelled(key=b.key, label=b.name, value=round(shares.get(b.key, 0.0), 1)) for b in badges if b.active]
    return sorted(found, key=lambda item: (item.value, item.label))

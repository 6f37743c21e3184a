"""Segments: SQL side. Definitions, and the metrics as SQL expressions correlated to ``members``.

Every metric is a scalar subquery over an indexed table — the event log (``ix_event_log_member_time``:
brand, member, time), the ledger (``ix_ledger_member``), the balance (primary key) — or one another domain
provides through :class:`engine.grants.MemberMetric`. Nothing replays a member's history in Python, and the
pipeline reads them all in one statement right after it locks the unit's members
(:meth:`segments.processor.SegmentsStep.lock_columns`, :func:`engine.member_locks.ensure_and_lock`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import BigInteger, Float, delete, func, literal, select
from sqlalchemy.exc import IntegrityError

from engine import tenants
from engine.db import batches, one_of
from engine.errors import Conflict
from engine.ids import MemberId
from engine.ledger import SPEND
from engine.members import view_of
from engine.orm import EventRow, LedgerRow, MemberRow, PointBalanceRow
from segments.models import Clause, SegmentDef, member_of, needed_clauses
from segments.orm import SegmentRow

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.grants import MemberMetric
    from engine.ids import BrandId

SAMPLE = 10
SCAN_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """One member as segments see them: identity, attribute view and the SQL metric values."""

    id: MemberId
    external_id: str
    display_name: str
    view: dict[str, Any]
    facts: dict[str, Any]


async def load_segments(session: AsyncSession, brand_id: BrandId) -> list[SegmentDef]:
    """The brand's segments, by slug."""
    rows = await session.scalars(
        select(SegmentRow.spec).where(SegmentRow.brand_id == brand_id).order_by(SegmentRow.slug)
    )
    return [msgspec.convert(spec, SegmentDef) for spec in rows]


async def save_segment(session: AsyncSession, *, brand_id: BrandId, segment: SegmentDef, now: datetime) -> bool:
    """Create or replace a segment; returns whether it was created. Bumps the configuration version."""
    row = await session.get(SegmentRow, (brand_id, segment.slug))
    spec = msgspec.to_builtins(segment)
    if row is None:
        session.add(SegmentRow(brand_id=brand_id, slug=segment.slug, spec=spec, updated_at=now))
        try:
            await session.flush()
        except IntegrityError as exc:
            raise Conflict(f"segment {segment.slug!r} was created concurrently", field="slug") from exc
    else:
        row.spec = spec
        row.updated_at = now
    await tenants.bump_config_version(session, brand_id)
    return row is None


async def delete_segment(session: AsyncSession, *, brand_id: BrandId, slug: str) -> bool:
    """Remove a segment; returns whether it existed."""
    result = await session.execute(delete(SegmentRow).where(SegmentRow.brand_id == brand_id, SegmentRow.slug == slug))
    gone = bool(getattr(result, "rowcount", 0))
    if gone:
        await tenants.bump_config_version(session, brand_id)
    return gone


def metric_column(
    clause: Clause, *, now: datetime, sources: Mapping[str, MemberMetric], member: Any = None, brand: Any = None
) -> Any:  # fmt: skip
    """The SQL expression of ``clause``'s metric for the member row ``members`` (correlated)."""
    member_id = MemberRow.id if member is None else member
    brand_id = MemberRow.brand_id if brand is None else brand
    events = (EventRow.brand_id == brand_id, EventRow.member_id == member_id)
    window = (EventRow.occurred_at >= now - timedelta(days=clause.days),) if clause.days else ()
    typed = (EventRow.type == clause.event_type,) if clause.event_type else ()
    match clause.metric:
        case "events":
            return select(func.count()).where(*events, *typed, *window).scalar_subquery()
        case "spend":
            amount = EventRow.properties[clause.property].as_float()
            return (
                select(func.coalesce(func.sum(amount), literal(0.0, Float())))
                .where(*events, *typed, *window)
                .scalar_subquery()
            )
        case "days_since_last_event":
            return select(func.max(EventRow.occurred_at)).where(*events, *typed).scalar_subquery()
        case "points_balance":
            return (
                select(func.coalesce(func.max(PointBalanceRow.available), 0))
                .where(PointBalanceRow.member_id == member_id)
                .scalar_subquery()
            )
        case "redemptions":
            return (
                select(func.count())
                .where(LedgerRow.brand_id == brand_id, LedgerRow.member_id == member_id, LedgerRow.kind == SPEND,
                       LedgerRow.source == "redemption")
                .scalar_subquery()
            )  # fmt: skip
        case "badges" | "challenges_completed":
            source = sources.get(clause.metric)
            if source is None:  # the providing domain is not installed: nobody has any
                return literal(0, BigInteger())
            return source(brand_id=brand_id, member_id=member_id, arg=clause.badge)
    raise AssertionError(clause.metric)  # pragma: no cover


def columns(
    clauses: Mapping[str, Clause], *, now: datetime, sources: Mapping[str, MemberMetric]
) -> dict[str, Any]:  # fmt: skip
    """Label → SQL expression for each needed metric (see :func:`segments.models.needed_clauses`)."""
    return {key: metric_column(clause, now=now, sources=sources) for key, clause in clauses.items()}


def _facts(row: Any, keys: Iterable[str]) -> MemberFacts:
    return MemberFacts(
        id=MemberId(row.id),
        external_id=row.external_id,
        display_name=row.display_name,
        view=view_of(row.locale, dict(row.attributes or {}), row.tier),
        facts={key: row._mapping[key] for key in keys},
    )


_BASE = (
    MemberRow.id,
    MemberRow.external_id,
    MemberRow.display_name,
    MemberRow.locale,
    MemberRow.attributes,
    MemberRow.tier,
)


async def facts_of(
    session: AsyncSession, *, brand_id: BrandId, member_ids: list[MemberId], segments: list[SegmentDef],
    now: datetime, sources: Mapping[str, MemberMetric],
) -> dict[MemberId, MemberFacts]:  # fmt: skip
    """The given members with the metrics ``segments`` need (one statement per batch)."""
    needed = columns(needed_clauses(segments), now=now, sources=sources)
    found: dict[MemberId, MemberFacts] = {}
    for chunk in batches(session, member_ids):
        query = select(*_BASE, *(expr.label(key) for key, expr in needed.items())).where(
            MemberRow.brand_id == brand_id, one_of(session, MemberRow.id, chunk, BigInteger())
        )
        for row in await session.execute(query):
            member = _facts(row, needed)
            found[member.id] = member
    return found


async def member_by_external_id(
    session: AsyncSession, *, brand_id: BrandId, external_id: str, segments: list[SegmentDef], now: datetime,
    sources: Mapping[str, MemberMetric],
) -> MemberFacts | None:  # fmt: skip
    """One member by the brand's external id, with the metrics ``segments`` need."""
    member_id = await session.scalar(
        select(MemberRow.id).where(MemberRow.brand_id == brand_id, MemberRow.external_id == external_id)
    )
    if member_id is None:
        return None
    found = await facts_of(
        session, brand_id=brand_id, member_ids=[MemberId(member_id)], segments=segments, now=now, sources=sources
    )
    return found.get(MemberId(member_id))


@dataclass(frozen=True, slots=True)
class Census:
    """A segment's live member count, a sample of its members, and how many members were looked at."""

    count: int
    sample: list[MemberFacts]
    scanned: int


async def census(
    session: AsyncSession, *, brand_id: BrandId, segment: SegmentDef, now: datetime,
    sources: Mapping[str, MemberMetric], sample: int = SAMPLE,
) -> Census:  # fmt: skip
    """Count the brand's members in ``segment`` now: the metrics in SQL, chunk by chunk (keyset on the id)."""
    needed = columns(needed_clauses([segment]), now=now, sources=sources)
    count = scanned = 0
    after = 0
    members: list[MemberFacts] = []
    labelled = [expr.label(key) for key, expr in needed.items()]
    while True:
        query = (
            select(*_BASE, *labelled)
            .where(MemberRow.brand_id == brand_id, MemberRow.id > after)
            .order_by(MemberRow.id)
            .limit(SCAN_CHUNK)
        )
        rows = (await session.execute(query)).all()
        for row in rows:
            member = _facts(row, needed)
            if member_of(segment, member.facts, member.view, now):
                count += 1
                if len(members) < sample:
                    members.append(member)
        scanned += len(rows)
        if len(rows) < SCAN_CHUNK:
            return Census(count=count, sample=members, scanned=scanned)
        after = rows[-1].id

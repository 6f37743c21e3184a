"""Tiers: SQL side (program, counters, current tiers, history, once-only bonuses)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime  # noqa: TC003 (dataclass fields)
from typing import TYPE_CHECKING, Any, cast

import msgspec
from sqlalchemy import BigInteger, Date, String, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from engine import metrics, tenants
from engine.db import batches, insert_for, on_postgres, one_of
from engine.fused import RowsInsert
from engine.ids import MemberId
from engine.orm import MemberRow
from tiers.changes import Current as Current
from tiers.changes import TierChange as TierChange
from tiers.changes import changed, empty, set_tiers
from tiers.changes import set_tier as set_tier
from tiers.models import TierProgram
from tiers.orm import MemberTierRow, TierBonusRow, TierCounterRow, TierHistoryRow, TierProgramRow
from tiers.rules import review_at

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId
    from engine.tenants import Brand

_COUNTERS = cast("Table", TierCounterRow.__table__)


async def load_program(session: AsyncSession, brand_id: BrandId) -> TierProgram | None:
    """The brand's tier program, or ``None`` when it has none."""
    spec = await session.scalar(select(TierProgramRow.spec).where(TierProgramRow.brand_id == brand_id))
    return None if spec is None else msgspec.convert(spec, TierProgram)


async def save_program(session: AsyncSession, *, brand_id: BrandId, program: TierProgram | None, now: datetime) -> None:
    """Store (or, with ``None``, remove) the brand's program and bump its configuration version."""
    removed = await session.execute(delete(TierProgramRow).where(TierProgramRow.brand_id == brand_id))
    if program is None:  # no tiers any more: `member.tier` reads the brand's attribute again
        await session.execute(update(MemberRow).where(MemberRow.brand_id == brand_id).values(tier=None))
    else:
        session.add(TierProgramRow(brand_id=brand_id, spec=msgspec.to_builtins(program), updated_at=now))
        await session.flush()
        if not getattr(removed, "rowcount", 0):  # tiers (re)defined: current tier rows are what member.tier reads
            await _resync_member_tiers(session, brand_id=brand_id)
        await adopt_attributes(session, brand_id=brand_id, program=program, now=now)
    await tenants.bump_config_version(session, brand_id)


async def _resync_member_tiers(session: AsyncSession, *, brand_id: BrandId) -> None:
    rows = (
        await session.execute(
            select(MemberTierRow.member_id, MemberTierRow.tier).where(MemberTierRow.brand_id == brand_id)
        )
    ).all()
    if rows:
        members = cast("Table", MemberRow.__table__)
        statement = update(members).where(members.c.id == bindparam("member")).values(tier=bindparam("computed"))
        await session.execute(statement, [{"member": m, "computed": t or ""} for m, t in rows])


async def adopt_attributes(session: AsyncSession, *, brand_id: BrandId, program: TierProgram, now: datetime) -> int:
    """Members whose ``tier`` attribute names a defined tier and who have no tier row get it (change ``migrated``).

    They are reviewed at the end of their current window, like a member who qualified today.
    """
    keys = {t.key for t in program.tiers}
    tz = (await tenants.get_brand_by_id(session, brand_id)).tz
    known = select(MemberTierRow.member_id).where(MemberTierRow.brand_id == brand_id)
    rows = await session.execute(
        select(MemberRow.id, MemberRow.attributes, MemberRow.created_at).where(
            MemberRow.brand_id == brand_id, MemberRow.id.not_in(known)
        )
    )
    changes: list[TierChange] = []
    for member_id, attributes, created_at in rows:
        value = (attributes or {}).get("tier")
        if isinstance(value, str) and value in keys:
            when = review_at(program.qualification.window, now, tz, member_since=created_at)
            reason = "from the member's tier attribute"
            member = empty(MemberId(member_id))
            changes.append(changed(member, tier=value, change="migrated", now=now, reason=reason, review_at=when))
    await set_tiers(session, brand_id=brand_id, changes=changes, now=now)
    return len(changes)


# PostgreSQL: a unit's rows of each table in one statement of fixed text (engine.fused.RowsInsert); the
# executemany upsert it replaces was a multi-row VALUES with a new text for every number of rows.
_ADD_COUNTERS = RowsInsert(
    "tier_counters",
    (("member_id", "bigint"), ("metric", "varchar"), ("day", "date"), ("brand_id", "bigint"),
     ("value", "double precision")),
    "ON CONFLICT (member_id, metric, day) DO UPDATE SET value = tier_counters.value + excluded.value",
)  # fmt: skip


def _current(row: Any) -> Current:
    return Current(
        member_id=MemberId(row.member_id), tier=row.tier, since=row.since, review_at=row.review_at,
        keep_until=row.keep_until, override_until=row.override_until, override_reason=row.override_reason,
        source=row.source, version=row.version,
    )  # fmt: skip


# PostgreSQL: the unit's reads of its members' tiers and day counters as one probe per member, by primary key
# (as engine.points' caps read). As lists, a generic plan made while the statistics predated the brand read
# every row of the brand through the (brand_id, review_at) and (brand_id, metric, day) indexes and filtered
# them against the list. The brand is checked outside the probe: inside it, the (brand_id, metric, day)
# index looked as cheap as the key and was chosen, once per member. OFFSET 0 keeps the subquery from being
# flattened and the brand's check from being pushed into it; tests/integration/test_unit_plans.py checks
# both plans.
_CURRENT = (
    text(
        "SELECT t.member_id, t.tier, t.since, t.review_at, t.keep_until, t.override_until, t.override_reason,"
        " t.source, t.version FROM unnest(:member_ids) AS m(member_id)"
        " CROSS JOIN LATERAL (SELECT * FROM member_tiers WHERE member_tiers.member_id = m.member_id OFFSET 0) AS t"
        " WHERE t.brand_id = :brand_id"
    )
    .bindparams(bindparam("member_ids", type_=ARRAY(BigInteger())))
    .columns(
        MemberTierRow.member_id,
        MemberTierRow.tier,
        MemberTierRow.since,
        MemberTierRow.review_at,
        MemberTierRow.keep_until,
        MemberTierRow.override_until,
        MemberTierRow.override_reason,
        MemberTierRow.source,
        MemberTierRow.version,
    )
)
_DAY_COUNTERS = (
    text(
        "SELECT m.member_id, c.day, c.value FROM unnest(:member_ids) AS m(member_id)"
        " CROSS JOIN LATERAL (SELECT tier_counters.brand_id, tier_counters.day, tier_counters.value"
        " FROM tier_counters WHERE tier_counters.member_id = m.member_id AND tier_counters.metric = :metric"
        " AND tier_counters.day >= :first OFFSET 0) AS c WHERE c.brand_id = :brand_id"
    )
    .bindparams(
        bindparam("member_ids", type_=ARRAY(BigInteger())),
        bindparam("metric", type_=String()),
        bindparam("first", type_=Date()),
    )
    .columns(TierCounterRow.member_id, TierCounterRow.day, TierCounterRow.value)
)


async def current_tiers(
    session: AsyncSession, *, brand_id: BrandId, member_ids: list[MemberId]
) -> dict[MemberId, Current]:
    """The current tier rows of the given members (members without one get :func:`empty`)."""
    found = {m: empty(m) for m in member_ids}
    if on_postgres(session):
        probed = await session.execute(_CURRENT, {"brand_id": brand_id, "member_ids": list(member_ids)})
        found.update((MemberId(r.member_id), _current(r)) for r in probed)
        return found
    for chunk in batches(session, member_ids):
        rows = await session.scalars(
            select(MemberTierRow).where(
                MemberTierRow.brand_id == brand_id, one_of(session, MemberTierRow.member_id, chunk, BigInteger())
            )
        )
        found.update((MemberId(r.member_id), _current(r)) for r in rows)
    return found


async def add_counters(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Add to members' day counters: one upsert statement for the whole unit of work."""
    if not rows:
        return
    if on_postgres(session):
        await _ADD_COUNTERS.execute(session, rows)
        return
    insert = insert_for(session)
    statement = insert(_COUNTERS)
    statement = statement.on_conflict_do_update(
        index_elements=["member_id", "metric", "day"], set_={"value": _COUNTERS.c.value + statement.excluded.value}
    )
    await session.execute(statement, rows)


async def day_counters(
    session: AsyncSession, *, brand_id: BrandId, metric: str, member_ids: list[MemberId], first: date
) -> dict[MemberId, dict[date, float]]:
    """Each member's metric per local day from ``first`` on (one query)."""
    found: dict[MemberId, dict[date, float]] = defaultdict(dict)
    if on_postgres(session):
        params = {"brand_id": brand_id, "metric": metric, "first": first, "member_ids": list(member_ids)}
        for member_id, day, value in await session.execute(_DAY_COUNTERS, params):
            found[MemberId(member_id)][day] = float(value)
        return found
    for chunk in batches(session, member_ids):
        rows = await session.execute(
            select(TierCounterRow.member_id, TierCounterRow.day, TierCounterRow.value).where(
                TierCounterRow.brand_id == brand_id,
                TierCounterRow.metric == metric,
                TierCounterRow.day >= first,
                one_of(session, TierCounterRow.member_id, chunk, BigInteger()),
            )
        )
        for member_id, day, value in rows:
            found[MemberId(member_id)][day] = float(value)
    return found


async def member_since(
    session: AsyncSession, *, brand_id: BrandId, member_ids: list[MemberId]
) -> dict[MemberId, datetime]:
    """When each member enrolled (anniversary windows)."""
    found: dict[MemberId, datetime] = {}
    for chunk in batches(session, member_ids):
        rows = await session.execute(
            select(MemberRow.id, MemberRow.created_at).where(
                MemberRow.brand_id == brand_id, one_of(session, MemberRow.id, chunk, BigInteger())
            )
        )
        found.update((MemberId(i), at) for i, at in rows)
    return found


def count_change(session: AsyncSession, brand: Brand, *, previous: str | None, tier: str | None) -> None:
    """Count a member moving to another tier (``questline_tier_changes_total``) when the transaction commits."""
    if tier != previous:
        metrics.count_on_commit(session, metrics.TIER_CHANGES, brand)


async def history(
    session: AsyncSession, *, brand_id: BrandId, member_id: MemberId, limit: int = 50
) -> list[TierHistoryRow]:
    """The member's tier changes, newest first."""
    rows = await session.scalars(
        select(TierHistoryRow)
        .where(TierHistoryRow.brand_id == brand_id, TierHistoryRow.member_id == member_id)
        .order_by(TierHistoryRow.version.desc())
        .limit(limit)
    )
    return list(rows)


async def due_for_review(session: AsyncSession, *, brand_id: BrandId, before: datetime) -> list[Current]:
    """Members whose window ended or whose override ended by ``before``, locked for the job's transaction.

    The caller checks the grace period (in local days) itself.
    """
    query = select(MemberTierRow).where(
        MemberTierRow.brand_id == brand_id,
        (MemberTierRow.review_at <= before) | (MemberTierRow.override_until <= before),
    )
    if on_postgres(session):
        query = query.with_for_update(skip_locked=True)
    return [_current(r) for r in await session.scalars(query.order_by(MemberTierRow.member_id))]


async def reschedule(session: AsyncSession, *, member_id: MemberId, review_at: datetime | None) -> None:
    """Move a member's next review (a minimum stay that is not over)."""
    await session.execute(update(MemberTierRow).where(MemberTierRow.member_id == member_id).values(review_at=review_at))


async def take_bonus(
    session: AsyncSession, *, brand_id: BrandId, member_id: MemberId, kind: str, period: str, value: str, now: datetime
) -> bool:
    """Record a once-only benefit; ``False`` when it was already taken (the primary key decides)."""
    insert = insert_for(session)
    result = await session.execute(
        insert(cast("Table", TierBonusRow.__table__))
        .values(member_id=member_id, kind=kind, period=period, brand_id=brand_id, value=value, at=now)
        .on_conflict_do_nothing(index_elements=["member_id", "kind", "period"])
    )
    return bool(getattr(result, "rowcount", 0))


async def bonus(session: AsyncSession, *, member_id: MemberId, kind: str, period: str) -> str | None:
    """The value of a benefit taken, if any."""
    return await session.scalar(
        select(TierBonusRow.value).where(
            TierBonusRow.member_id == member_id, TierBonusRow.kind == kind, TierBonusRow.period == period
        )
    )


async def distribution(session: AsyncSession, *, brand_id: BrandId) -> dict[str, int]:
    """How many members hold each tier now."""
    rows = await session.execute(
        select(MemberTierRow.tier, func.count())
        .where(MemberTierRow.brand_id == brand_id, MemberTierRow.tier.is_not(None))
        .group_by(MemberTierRow.tier)
    )
    return {str(tier): int(n) for tier, n in rows}


async def changes_between(
    session: AsyncSession, *, brand_id: BrandId, start: datetime, end: datetime
) -> list[tuple[datetime, str | None, str | None]]:
    """Every change in ``[start, end)`` as ``(at, previous, tier)``, oldest first (members per tier over time)."""
    rows = await session.execute(
        select(TierHistoryRow.at, TierHistoryRow.previous, TierHistoryRow.tier)
        .where(TierHistoryRow.brand_id == brand_id, TierHistoryRow.at >= start, TierHistoryRow.at < end)
        .order_by(TierHistoryRow.at, TierHistoryRow.id)
    )
    return [(at, prev, tier) for at, prev, tier in rows]


async def all_current(session: AsyncSession, *, brand_id: BrandId) -> dict[MemberId, str | None]:
    """Every member's current tier (for the simulation)."""
    rows = await session.execute(
        select(MemberTierRow.member_id, MemberTierRow.tier).where(MemberTierRow.brand_id == brand_id)
    )
    return {MemberId(m): t for m, t in rows}


async def members_with_counters(
    session: AsyncSession, *, brand_id: BrandId, metric: str, first: date
) -> list[MemberId]:
    """Members with any counter from ``first`` on."""
    rows = await session.scalars(
        select(TierCounterRow.member_id)
        .where(TierCounterRow.brand_id == brand_id, TierCounterRow.metric == metric, TierCounterRow.day >= first)
        .distinct()
    )
    return [MemberId(m) for m in rows]

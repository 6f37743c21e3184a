"""Tiers: SQL side (program, counters, current tiers, history, once-only bonuses)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime  # noqa: TC003 (dataclass fields)
from typing import TYPE_CHECKING, Any, cast

import msgspec
from sqlalchemy import BigInteger, Date, DateTime, Integer, String, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from engine import metrics, tenants
from engine.db import batches, insert_for, on_postgres, one_of
from engine.fused import RowsInsert
from engine.ids import MemberId
from engine.orm import MemberRow
from tiers.models import TierProgram
from tiers.orm import MemberTierRow, TierBonusRow, TierCounterRow, TierHistoryRow, TierProgramRow
from tiers.rules import review_at

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId
    from engine.tenants import Brand

_COUNTERS = cast("Table", TierCounterRow.__table__)
_TIERS = cast("Table", MemberTierRow.__table__)
_HISTORY = cast("Table", TierHistoryRow.__table__)


@dataclass(slots=True)
class Current:
    """A member's current tier row (``tier`` ``None`` with ``version`` 0: no row yet)."""

    member_id: MemberId
    tier: str | None
    since: datetime | None
    review_at: datetime | None
    keep_until: datetime | None
    override_until: datetime | None
    override_reason: str
    source: str
    version: int


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


def empty(member_id: MemberId) -> Current:
    """A member with no tier row."""
    return Current(member_id, None, None, None, None, None, "", "", 0)


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


@dataclass(frozen=True, slots=True)
class TierChange:
    """One change of a member's tier to record (:func:`set_tiers`): the row before it and the row it makes."""

    before: Current
    after: Current
    change: str
    reason: str
    event_key: str | None


def changed(
    current: Current,
    *,
    tier: str | None,
    change: str,
    now: datetime,
    review_at: datetime | None = None,
    keep_until: datetime | None = None,
    override_until: datetime | None = None,
    reason: str = "",
    event_key: str | None = None,
) -> TierChange:
    """The change as it will be recorded (nothing is written): the row's next version, source and dates."""
    source = "override" if change == "override" else ("migrated" if change == "migrated" else "qualified")
    since = now if change != "renewed" or current.since is None else current.since
    override_reason = reason if change == "override" else ""
    after = Current(
        current.member_id, tier, since, review_at, keep_until, override_until, override_reason, source,
        current.version + 1,
    )  # fmt: skip
    return TierChange(before=current, after=after, change=change, reason=reason, event_key=event_key)


async def set_tier(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    current: Current,
    tier: str | None,
    change: str,
    now: datetime,
    review_at: datetime | None = None,
    keep_until: datetime | None = None,
    override_until: datetime | None = None,
    reason: str = "",
    event_key: str | None = None,
) -> Current:
    """Record a change: the current row (version + 1), a history row unique per version, and ``members.tier``.

    A concurrent writer of the same change collides on ``(member_id, version)`` and is retried.
    """
    step = changed(
        current, tier=tier, change=change, now=now, review_at=review_at, keep_until=keep_until,
        override_until=override_until, reason=reason, event_key=event_key,
    )  # fmt: skip
    await set_tiers(session, brand_id=brand_id, changes=[step], now=now)
    return step.after


# PostgreSQL: a unit's rows of each table in one statement of fixed text (engine.fused.RowsInsert); the
# executemany inserts they replace were a multi-row VALUES with a new text for every number of rows.
_ADD_COUNTERS = RowsInsert(
    "tier_counters",
    (("member_id", "bigint"), ("metric", "varchar"), ("day", "date"), ("brand_id", "bigint"),
     ("value", "double precision")),
    "ON CONFLICT (member_id, metric, day) DO UPDATE SET value = tier_counters.value + excluded.value",
)  # fmt: skip
_INSERT_TIERS = RowsInsert(
    "member_tiers",
    (("member_id", "bigint"), ("brand_id", "bigint"), ("tier", "varchar"), ("since", "timestamptz"),
     ("review_at", "timestamptz"), ("keep_until", "timestamptz"), ("override_until", "timestamptz"),
     ("override_reason", "varchar"), ("source", "varchar"), ("version", "integer")),
)  # fmt: skip
_INSERT_HISTORY = RowsInsert(
    "tier_history",
    (("brand_id", "bigint"), ("member_id", "bigint"), ("version", "integer"), ("tier", "varchar"),
     ("previous", "varchar"), ("change", "varchar"), ("reason", "varchar"), ("event_key", "varchar"),
     ("at", "timestamptz")),
)  # fmt: skip

_ROW_FIELDS = ("tier", "since", "review_at", "keep_until", "override_until", "override_reason", "source", "version")

_UPDATE_TIERS = text(
    "UPDATE member_tiers AS t SET tier = u.tier, since = u.since, review_at = u.review_at,"
    " keep_until = u.keep_until, override_until = u.override_until, override_reason = u.override_reason,"
    " source = u.source, version = u.version"
    " FROM unnest(:member_ids, :expected, :tiers, :since, :review_at, :keep_until, :override_until,"
    " :override_reasons, :sources, :versions)"
    " AS u(member_id, expected, tier, since, review_at, keep_until, override_until, override_reason, source, version)"
    " WHERE t.member_id = u.member_id AND t.version = u.expected RETURNING t.member_id"
).bindparams(
    bindparam("member_ids", type_=ARRAY(BigInteger())),
    bindparam("expected", type_=ARRAY(Integer())),
    bindparam("tiers", type_=ARRAY(String())),
    bindparam("since", type_=ARRAY(DateTime(timezone=True))),
    bindparam("review_at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("keep_until", type_=ARRAY(DateTime(timezone=True))),
    bindparam("override_until", type_=ARRAY(DateTime(timezone=True))),
    bindparam("override_reasons", type_=ARRAY(String())),
    bindparam("sources", type_=ARRAY(String())),
    bindparam("versions", type_=ARRAY(Integer())),
)
"""PostgreSQL: members' tier rows moved on, each only from the version it was read at (one statement)."""

_MEMBER_TIERS = text(
    "UPDATE members SET tier = u.tier FROM unnest(:member_ids, :tiers) AS u(id, tier) WHERE members.id = u.id"
).bindparams(bindparam("member_ids", type_=ARRAY(BigInteger())), bindparam("tiers", type_=ARRAY(String())))
"""PostgreSQL: the members' computed ``tier`` (what ``member.tier`` reads), one statement for all of them."""


async def set_tiers(session: AsyncSession, *, brand_id: BrandId, changes: Sequence[TierChange], now: datetime) -> None:
    """Record ``changes`` in order, a few statements whatever their number (a member may change more than once).

    Each member's tier row goes to its last change's state, from the version its first change was read at;
    each change gets its history row, unique per member and version; ``members.tier`` takes the last tier.

    Raises:
        IntegrityError: a member's row changed since it was read (the pipeline retries the unit).
        ValueError: a member's changes do not follow each other version by version.
    """
    if not changes:
        return
    first: dict[MemberId, Current] = {}
    last: dict[MemberId, Current] = {}
    for step in changes:
        member_id = step.before.member_id
        previous = last.get(member_id)
        if previous is not None and previous.version != step.before.version:
            raise ValueError(f"member {member_id}: change from version {step.before.version} after {previous.version}")
        first.setdefault(member_id, step.before)
        last[member_id] = step.after
    created = [m for m, before in first.items() if before.version == 0]
    moved = [m for m, before in first.items() if before.version != 0]
    if created:
        rows = [{"member_id": m, "brand_id": brand_id, **_row_values(last[m])} for m in created]
        if on_postgres(session):
            await _INSERT_TIERS.execute(session, rows)
        else:
            await session.execute(_TIERS.insert(), rows)
    if moved:
        await _move_rows(session, moved=moved, first=first, last=last)
    history = [
        {
            "brand_id": brand_id,
            "member_id": step.before.member_id,
            "version": step.after.version,
            "tier": step.after.tier,
            "previous": step.before.tier,
            "change": step.change,
            "reason": step.reason,
            "event_key": step.event_key,
            "at": now,
        }
        for step in changes
    ]
    if on_postgres(session):
        await _INSERT_HISTORY.execute(session, history)
    else:
        await session.execute(_HISTORY.insert(), history)
    # "" (not NULL): the member's tier is computed and is none, so `member.tier` no longer reads an attribute.
    if on_postgres(session):
        tiers = [last[m].tier or "" for m in last]
        await session.execute(_MEMBER_TIERS, {"member_ids": list(last), "tiers": tiers})
    else:
        members = cast("Table", MemberRow.__table__)
        statement = update(members).where(members.c.id == bindparam("member")).values(tier=bindparam("computed"))
        await session.execute(statement, [{"member": m, "computed": after.tier or ""} for m, after in last.items()])


def _row_values(row: Current) -> dict[str, Any]:
    return {name: getattr(row, name) for name in _ROW_FIELDS}


async def _move_rows(
    session: AsyncSession, *, moved: list[MemberId], first: dict[MemberId, Current], last: dict[MemberId, Current]
) -> None:
    """Update existing tier rows from the versions they were read at; refuse if any moved meanwhile."""
    if on_postgres(session):
        rows = [last[m] for m in moved]
        params = {
            "member_ids": moved, "expected": [first[m].version for m in moved], "tiers": [r.tier for r in rows],
            "since": [r.since for r in rows], "review_at": [r.review_at for r in rows],
            "keep_until": [r.keep_until for r in rows], "override_until": [r.override_until for r in rows],
            "override_reasons": [r.override_reason for r in rows], "sources": [r.source for r in rows],
            "versions": [r.version for r in rows],
        }  # fmt: skip
        updated = len((await session.execute(_UPDATE_TIERS, params)).all())
    else:
        updated = 0
        for member_id in moved:
            result = await session.execute(
                update(_TIERS)
                .where(_TIERS.c.member_id == member_id, _TIERS.c.version == first[member_id].version)
                .values(**_row_values(last[member_id]))
            )
            updated += getattr(result, "rowcount", 1)
    if updated != len(moved):
        raise IntegrityError("member tier changed concurrently", None, ValueError("stale version"))


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

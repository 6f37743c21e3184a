"""Recording changes of members' tiers: the current row (versioned), a history row per change, ``members.tier``.

A unit of work's upgrades are written together (:func:`set_tiers`: at most four statements whatever their
number); a single change (overrides, reviews, migration) goes through :func:`set_tier`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # noqa: TC003 (dataclass fields)
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import BigInteger, DateTime, Integer, String, bindparam, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from engine.db import on_postgres
from engine.fused import RowsInsert
from engine.ids import MemberId  # noqa: TC001 (dataclass fields)
from engine.orm import MemberRow
from tiers.orm import MemberTierRow, TierHistoryRow

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId

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


def empty(member_id: MemberId) -> Current:
    """A member with no tier row."""
    return Current(member_id, None, None, None, None, None, "", "", 0)


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


# PostgreSQL: a change's rows in one statement of fixed text each (engine.fused.RowsInsert).
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

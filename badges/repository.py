"""SQL of the ``badges`` package: definitions, counters, awards. Every function takes the session first.

Writes that must happen at most once go through :func:`insert_awards` (``INSERT … ON CONFLICT DO
NOTHING RETURNING uid``): the database's unique key decides, and only the rows it reports inserted
produce effects. Reads for the pipeline are batched per unit of work (one query per kind of row).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import BigInteger, String, bindparam, case, delete, distinct, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from badges.models import Award, BadgeDef, BadgeSpec, Holding, badge_to_spec, build_badge
from badges.orm import BadgeAwardRow, BadgeCounterRow, BadgeDefinitionRow
from engine import metrics
from engine.db import on_postgres
from engine.errors import Conflict, NotFound
from engine.fused import RowsInsert
from engine.ids import BrandId, MemberId
from engine.orm import MemberRow

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.tenants import Brand

CHUNK = 500
AWARD_KEY = ["brand_id", "member_id", "badge_key", "level", "instance"]


def _insert(session: AsyncSession) -> Any:
    return pg_insert if on_postgres(session) else sqlite_insert


def _to_badge(spec: Mapping[str, Any], image: str | None) -> BadgeDef:
    data = dict(spec)
    has_image = bool(data.pop("has_image", False))
    if image:
        data["image"] = image
    badge = build_badge(msgspec.convert(data, BadgeSpec), path="stored")
    return badge if image else msgspec.structs.replace(badge, has_image=has_image)


def _stored_spec(badge: BadgeDef) -> dict[str, Any]:
    plain = msgspec.to_builtins(msgspec.structs.replace(badge_to_spec(badge), image=""))
    plain["has_image"] = badge.has_image
    return dict(plain)


def _to_award(row: BadgeAwardRow) -> Award:
    return Award(
        uid=row.uid,
        member_id=row.member_id,
        badge=row.badge_key,
        level=row.level,
        instance=row.instance,
        source=row.source,
        source_ref=row.source_ref,
        reason=row.reason,
        points=row.points,
        awarded_at=row.awarded_at,
        revoked_at=row.revoked_at,
        revocation_reason=row.revocation_reason,
        recipient_type=row.recipient_type,
        recipient_hash=row.recipient_hash,
        salt=row.salt,
        event=row.event_key,
    )


async def load_badges(session: AsyncSession, brand_id: BrandId, *, with_images: bool = False) -> list[BadgeDef]:
    """Every badge of the brand, by key; uploaded images only when asked (they can be large)."""
    if with_images:
        rows = await session.execute(
            select(BadgeDefinitionRow.spec, BadgeDefinitionRow.image)
            .where(BadgeDefinitionRow.brand_id == brand_id)
            .order_by(BadgeDefinitionRow.key)
        )
        return [_to_badge(spec, image) for spec, image in rows]
    specs = await session.scalars(
        select(BadgeDefinitionRow.spec).where(BadgeDefinitionRow.brand_id == brand_id).order_by(BadgeDefinitionRow.key)
    )
    return [_to_badge(spec, None) for spec in specs]


async def get_badge(session: AsyncSession, *, brand_id: BrandId, key: str, with_image: bool = False) -> BadgeDef:
    """The brand's badge ``key``.

    Raises:
        NotFound: no such badge.
    """
    row = (
        await session.execute(
            select(BadgeDefinitionRow.spec, BadgeDefinitionRow.image).where(
                BadgeDefinitionRow.brand_id == brand_id, BadgeDefinitionRow.key == key
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"no badge {key!r}", field="key")
    spec, image = row
    return _to_badge(spec, image if with_image else None)


async def upsert_badge(session: AsyncSession, *, brand_id: BrandId, badge: BadgeDef, now: datetime) -> str:
    """Create or replace a definition; returns ``created``, ``updated`` or ``unchanged``.

    The caller bumps the brand's config version (once per transaction).
    """
    spec = _stored_spec(badge)
    row = await session.scalar(
        select(BadgeDefinitionRow).where(BadgeDefinitionRow.brand_id == brand_id, BadgeDefinitionRow.key == badge.key)
    )
    if row is None:
        session.add(
            BadgeDefinitionRow(
                brand_id=brand_id, key=badge.key, spec=spec, image=badge.image, created_at=now, updated_at=now
            )
        )
        await session.flush()
        return "created"
    if row.spec == spec and row.image == badge.image:
        return "unchanged"
    row.spec = spec
    row.image = badge.image
    row.updated_at = now
    await session.flush()
    return "updated"


async def delete_badge(session: AsyncSession, *, brand_id: BrandId, key: str) -> None:
    """Delete a definition nobody was ever awarded.

    Raises:
        NotFound: no such badge.
        Conflict: awards of it exist (their hosted assertions refer to it): set ``active: false`` instead.
    """
    awarded = await session.scalar(
        select(func.count())
        .select_from(BadgeAwardRow)
        .where(BadgeAwardRow.brand_id == brand_id, BadgeAwardRow.badge_key == key)
    )
    if awarded:
        raise Conflict(
            f"badge {key!r} has {awarded} award(s) whose public assertions refer to it; set `active: false` instead",
            field="key",
        )
    await session.execute(
        delete(BadgeCounterRow).where(BadgeCounterRow.brand_id == brand_id, BadgeCounterRow.badge_key == key)
    )
    result = await session.execute(
        delete(BadgeDefinitionRow).where(BadgeDefinitionRow.brand_id == brand_id, BadgeDefinitionRow.key == key)
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound(f"no badge {key!r}", field="key")


# PostgreSQL: the unit's reads of its members' badge counters and awards as one probe per member (as the caps'
# read in engine.points), one statement and plan whatever the number of members. As IN lists of up to 500
# members they were a new statement for every list length, and a plan made while the statistics predated
# the brand could read its rows by brand (and badge) and filter them against the list: 15-20 ms each in a
# 1000-event unit of the demo program. The badges are checked outside the probe; OFFSET 0 keeps the
# subquery from being flattened and that check from being pushed into it. The counters' probe uses their
# key whatever the statistics say; the awards' probe does once the statistics know the table has rows
# (while they say it is empty, the narrower index on (brand_id, badge_key) looks cheaper, until
# autovacuum's first analyze of the table): tests/integration/test_unit_plans.py checks both.
_COUNTS = text(
    "SELECT m.member_id, c.badge_key, c.count FROM unnest(:member_ids) AS m(member_id)"
    " CROSS JOIN LATERAL (SELECT badge_counters.badge_key, badge_counters.count FROM badge_counters"
    " WHERE badge_counters.brand_id = :brand_id AND badge_counters.member_id = m.member_id OFFSET 0) AS c"
    " WHERE c.badge_key = ANY(:keys)"
).bindparams(bindparam("member_ids", type_=ARRAY(BigInteger())), bindparam("keys", type_=ARRAY(String())))
_HOLDINGS = text(
    "SELECT m.member_id, a.badge_key, a.level, sum(CASE WHEN a.revoked_at IS NULL THEN 1 ELSE 0 END)"
    " FROM unnest(:member_ids) AS m(member_id)"
    " CROSS JOIN LATERAL (SELECT badge_awards.badge_key, badge_awards.level, badge_awards.revoked_at"
    " FROM badge_awards WHERE badge_awards.brand_id = :brand_id AND badge_awards.member_id = m.member_id"
    " OFFSET 0) AS a WHERE a.badge_key = ANY(:keys) GROUP BY m.member_id, a.badge_key, a.level"
).bindparams(bindparam("member_ids", type_=ARRAY(BigInteger())), bindparam("keys", type_=ARRAY(String())))


_SAVE_COUNTS = RowsInsert(
    "badge_counters",
    (("brand_id", "bigint"), ("member_id", "bigint"), ("badge_key", "varchar"), ("count", "bigint"),
     ("updated_at", "timestamptz")),
    "ON CONFLICT (brand_id, member_id, badge_key) DO UPDATE SET count = excluded.count,"
    " updated_at = excluded.updated_at",
)  # fmt: skip
"""PostgreSQL: a unit's absolute counters, one statement of fixed text (see :class:`engine.fused.RowsInsert`)."""
_INSERT_AWARDS = RowsInsert(
    "badge_awards",
    (("uid", "varchar"), ("brand_id", "bigint"), ("member_id", "bigint"), ("badge_key", "varchar"),
     ("level", "varchar"), ("instance", "varchar"), ("source", "varchar"), ("source_ref", "varchar"),
     ("reason", "text"), ("points", "bigint"), ("event_key", "varchar"), ("awarded_at", "timestamptz"),
     ("revoked_at", "timestamptz"), ("revocation_reason", "text"), ("recipient_type", "varchar"),
     ("recipient_hash", "varchar"), ("salt", "varchar")),
    f"ON CONFLICT ({', '.join(AWARD_KEY)}) DO NOTHING RETURNING uid",
)  # fmt: skip
"""PostgreSQL: award rows unless their unique key exists, returning the uids inserted (one statement)."""


async def load_counts(
    session: AsyncSession, *, brand_id: BrandId, member_ids: Collection[MemberId], keys: Collection[str]
) -> dict[tuple[MemberId, str], int]:
    """Rule counters of ``member_ids`` on the badges ``keys``, in one query per 500 members."""
    if not member_ids or not keys:
        return {}
    found: dict[tuple[MemberId, str], int] = {}
    members = sorted(member_ids)
    if on_postgres(session):
        params = {"brand_id": brand_id, "member_ids": members, "keys": sorted(keys)}
        for member_id, key, count in await session.execute(_COUNTS, params):
            found[(MemberId(member_id), key)] = int(count)
        return found
    for start in range(0, len(members), CHUNK):
        rows = await session.execute(
            select(BadgeCounterRow.member_id, BadgeCounterRow.badge_key, BadgeCounterRow.count).where(
                BadgeCounterRow.brand_id == brand_id,
                BadgeCounterRow.member_id.in_(members[start : start + CHUNK]),
                BadgeCounterRow.badge_key.in_(sorted(keys)),
            )
        )
        for member_id, key, count in rows:
            found[(MemberId(member_id), key)] = int(count)
    return found


async def save_counts(
    session: AsyncSession, *, brand_id: BrandId, counts: Mapping[tuple[MemberId, str], int], now: datetime
) -> None:
    """Write absolute counter values (the member rows are locked by the pipeline, so this cannot race)."""
    if not counts:
        return
    rows = [
        {"brand_id": brand_id, "member_id": member_id, "badge_key": key, "count": count, "updated_at": now}
        for (member_id, key), count in sorted(counts.items())
    ]
    if on_postgres(session):
        await _SAVE_COUNTS.execute(session, rows)
        return
    statement = _insert(session)(BadgeCounterRow.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=["brand_id", "member_id", "badge_key"],
        set_={"count": statement.excluded.count, "updated_at": statement.excluded.updated_at},
    )
    await session.execute(statement, rows)  # SQLite: one cached statement, executed for many rows


async def load_holdings(
    session: AsyncSession, *, brand_id: BrandId, member_ids: Collection[MemberId], keys: Collection[str]
) -> dict[tuple[MemberId, str], Holding]:
    """What each member holds of each badge (levels with a row, live levels, live count), in one query."""
    if not member_ids or not keys:
        return {}
    live = case((BadgeAwardRow.revoked_at.is_(None), 1), else_=0)
    found: dict[tuple[MemberId, str], Holding] = {}
    members = sorted(member_ids)
    if on_postgres(session):
        params = {"brand_id": brand_id, "member_ids": members, "keys": sorted(keys)}
        _add_holdings(found, await session.execute(_HOLDINGS, params))
        return found
    for start in range(0, len(members), CHUNK):
        rows = await session.execute(
            select(BadgeAwardRow.member_id, BadgeAwardRow.badge_key, BadgeAwardRow.level, func.sum(live))
            .where(
                BadgeAwardRow.brand_id == brand_id,
                BadgeAwardRow.member_id.in_(members[start : start + CHUNK]),
                BadgeAwardRow.badge_key.in_(sorted(keys)),
            )
            .group_by(BadgeAwardRow.member_id, BadgeAwardRow.badge_key, BadgeAwardRow.level)
        )
        _add_holdings(found, rows)
    return found


def _add_holdings(found: dict[tuple[MemberId, str], Holding], rows: Iterable[Any]) -> None:
    for member_id, key, level, live_count in rows:
        holding = found.setdefault((MemberId(member_id), key), Holding())
        holding.levels.add(level)
        if live_count:
            holding.live_levels.add(level)
            holding.live += int(live_count)


async def insert_awards(session: AsyncSession, brand: Brand, rows: list[dict[str, Any]]) -> set[str]:
    """Insert award rows of ``brand`` unless their unique key exists; returns the uids actually inserted.

    ``ON CONFLICT DO NOTHING`` on the unique key: under concurrency the second writer waits for the first
    and then inserts nothing, so a duplicate award is impossible and nothing is silently swallowed.
    Every award counts once here (``questline_badge_awards_total``), whichever path granted it.
    """
    if not rows:
        return set()
    if on_postgres(session):
        inserted = {uid for (uid,) in await _INSERT_AWARDS.execute(session, rows)}
    else:
        table = BadgeAwardRow.__table__
        statement = _insert(session)(table).on_conflict_do_nothing(index_elements=AWARD_KEY).returning(table.c.uid)
        inserted = set((await session.execute(statement, rows)).scalars())
    metrics.count_on_commit(session, metrics.BADGE_AWARDS, brand, amount=len(inserted))
    return inserted


async def find_award(
    session: AsyncSession, *, brand_id: BrandId, member_id: MemberId, badge_key: str, level: str, instance: str
) -> Award | None:
    """The award with this unique key, revoked or not."""
    row = await session.scalar(
        select(BadgeAwardRow).where(
            BadgeAwardRow.brand_id == brand_id,
            BadgeAwardRow.member_id == member_id,
            BadgeAwardRow.badge_key == badge_key,
            BadgeAwardRow.level == level,
            BadgeAwardRow.instance == instance,
        )
    )
    return _to_award(row) if row is not None else None


async def reinstate_award(session: AsyncSession, *, uid: str, reason: str) -> Award:
    """Clear the revocation of an award (a manual grant of a badge whose award had been revoked)."""
    await session.execute(
        update(BadgeAwardRow)
        .where(BadgeAwardRow.uid == uid)
        .values(revoked_at=None, revocation_reason="", reason=reason)
    )
    row = await session.scalar(select(BadgeAwardRow).where(BadgeAwardRow.uid == uid))
    assert row is not None
    return _to_award(row)


async def revoke_awards(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    member_id: MemberId,
    badge_key: str,
    reason: str,
    now: datetime,
    level: str = "",
    uid: str = "",
) -> list[Award]:
    """Revoke the member's live awards of a badge (only ``level`` or award ``uid`` when given); returns them."""
    query = select(BadgeAwardRow).where(
        BadgeAwardRow.brand_id == brand_id,
        BadgeAwardRow.member_id == member_id,
        BadgeAwardRow.badge_key == badge_key,
        BadgeAwardRow.revoked_at.is_(None),
    )
    if level:
        query = query.where(BadgeAwardRow.level == level)
    if uid:
        query = query.where(BadgeAwardRow.uid == uid)
    if on_postgres(session):
        query = query.with_for_update()
    rows = list(await session.scalars(query.order_by(BadgeAwardRow.id)))
    for row in rows:
        row.revoked_at = now
        row.revocation_reason = reason
    await session.flush()
    return [_to_award(r) for r in rows]


async def member_awards(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> list[Award]:
    """Every award of the member, revoked ones included, oldest first."""
    rows = await session.scalars(
        select(BadgeAwardRow)
        .where(BadgeAwardRow.brand_id == brand_id, BadgeAwardRow.member_id == member_id)
        .order_by(BadgeAwardRow.awarded_at, BadgeAwardRow.id)
    )
    return [_to_award(r) for r in rows]


async def member_counts(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> dict[str, int]:
    """The member's rule counters, by badge key."""
    rows = await session.execute(
        select(BadgeCounterRow.badge_key, BadgeCounterRow.count).where(
            BadgeCounterRow.brand_id == brand_id, BadgeCounterRow.member_id == member_id
        )
    )
    return {key: int(count) for key, count in rows}


async def holders(session: AsyncSession, *, brand_id: BrandId) -> tuple[dict[str, int], int]:
    """How many members hold each badge (a live award), and how many members the brand has."""
    rows = await session.execute(
        select(BadgeAwardRow.badge_key, func.count(distinct(BadgeAwardRow.member_id)))
        .where(BadgeAwardRow.brand_id == brand_id, BadgeAwardRow.revoked_at.is_(None))
        .group_by(BadgeAwardRow.badge_key)
    )
    counts = {key: int(n) for key, n in rows}
    members = await session.scalar(select(func.count()).select_from(MemberRow).where(MemberRow.brand_id == brand_id))
    return counts, int(members or 0)


def rarity(counts: Mapping[str, int], members: int) -> dict[str, float]:
    """Percent of the brand's members holding each badge, to one decimal."""
    if members <= 0:
        return {}
    return {key: round(100.0 * n / members, 1) for key, n in counts.items()}


async def award_by_uid(session: AsyncSession, uid: str) -> tuple[BrandId, Award]:
    """An award by its public id, with its brand.

    Raises:
        NotFound: no such award.
    """
    row = await session.scalar(select(BadgeAwardRow).where(BadgeAwardRow.uid == uid))
    if row is None:
        raise NotFound("no such award", field="award")
    return BrandId(row.brand_id), _to_award(row)


async def badge_is_public(session: AsyncSession, *, brand_id: BrandId, badge: BadgeDef) -> bool:
    """Whether the badge's class and art may be shown: any visible badge, or a hidden one somebody holds."""
    if not badge.hidden:
        return True
    held = await session.scalar(
        select(BadgeAwardRow.id)
        .where(
            BadgeAwardRow.brand_id == brand_id,
            BadgeAwardRow.badge_key == badge.key,
            BadgeAwardRow.revoked_at.is_(None),
        )
        .limit(1)
    )
    return held is not None


async def member_external_ids(
    session: AsyncSession, *, brand_id: BrandId, member_ids: Iterable[MemberId]
) -> dict[MemberId, str]:
    """External ids of members by id."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(MemberRow.id, MemberRow.external_id).where(MemberRow.brand_id == brand_id, MemberRow.id.in_(ids))
    )
    return {MemberId(i): e for i, e in rows}

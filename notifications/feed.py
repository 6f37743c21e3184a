"""The in-app feed: derived from the outbox every producer already writes, read and marked by members.

Every notification-worthy fact (a badge, a completed challenge, a tier change, points about to expire, a
redemption, a qualified referral) is already an outbox message written in the producer's own transaction
— the pipeline, the points jobs, a redemption, a tier review, a manual grant. :func:`derive` reads those
messages past a cursor and inserts one row per member; ``(brand, member, source)`` is unique, so reading a
message twice (a crash before the cursor moved, two workers, the look-back below) adds nothing.

PostgreSQL may commit a lower outbox id after a higher one was read; each pass therefore also reads again
the :data:`LOOKBACK` ids just below the cursor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import BigInteger, String, func, select, update

from engine.db import batches, insert_for, one_of
from engine.orm import BrandRow, MemberRow, OutboxRow
from notifications.models import TOPIC_KINDS, Item, controls_of, recipients
from notifications.orm import NotificationCursorRow, NotificationRow

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database

CURSOR = "outbox"
LOOKBACK = 200
BATCH = 500
FEED_PAGE = 50
_TOPICS = tuple(TOPIC_KINDS)


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    """What a feed entry keeps of a message: scalars and names per language (a points notice's lots are dropped)."""
    kept: dict[str, Any] = {}
    for key, value in data.items():
        if key == "event":
            continue
        if isinstance(value, str | int | float | bool) or (
            isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        ):
            kept[key] = value
    return kept


async def derive(db: Database, *, now: datetime, recorded: set[int] | None = None) -> set[tuple[int, int]]:
    """Turn outbox messages past the cursor into feed rows; answers the ``(brand, member)`` pairs that got one.

    ``recorded``, kept by the caller from pass to pass, holds the ids of the look-back window this process
    already turned into rows: they are not read into rows again (another process's are, harmlessly).
    """
    touched: set[tuple[int, int]] = set()
    while True:
        fresh = await _derive_batch(db, now=now, touched=touched, recorded=recorded)
        if fresh < BATCH:
            return touched


async def _derive_batch(
    db: Database, *, now: datetime, touched: set[tuple[int, int]], recorded: set[int] | None
) -> int:
    """One batch past the cursor (with the look-back); answers how many messages were new."""
    done: list[int] = []
    async with db.write() as session:
        cursor = await session.get(NotificationCursorRow, CURSOR, with_for_update=True)
        if cursor is None:
            cursor = NotificationCursorRow(name=CURSOR, position=0)
            session.add(cursor)
            await session.flush()
        start = cursor.position
        rows = list(
            await session.execute(
                select(OutboxRow.id, OutboxRow.brand_id, OutboxRow.topic, OutboxRow.payload)
                .where(OutboxRow.id > max(0, start - LOOKBACK), OutboxRow.topic.in_(_TOPICS))
                .order_by(OutboxRow.id)
                .limit(BATCH + LOOKBACK)
            )
        )
        if rows:
            todo = [r for r in rows if recorded is None or int(r[0]) not in recorded]
            touched |= await _record_messages(session, todo, now=now)
            done = [int(r[0]) for r in rows]
            cursor.position = max(start, max(done))
        else:
            highest = await session.scalar(select(func.max(OutboxRow.id)))
            cursor.position = max(start, int(highest or 0))
        position = cursor.position
    if recorded is not None:  # committed: these need no second reading by this process
        recorded.update(done)
        recorded.difference_update([i for i in recorded if i <= position - LOOKBACK])
    return sum(1 for i in done if i > start)


async def _record_messages(session: AsyncSession, rows: list[Any], *, now: datetime) -> set[tuple[int, int]]:
    wanted: list[tuple[int, str, str, str, dict[str, Any]]] = []  # brand, external id, kind, source, data
    for message_id, brand_id, topic, payload in rows:
        data = dict((payload or {}).get("data") or {})
        for external_id, kind in recipients(topic, data):
            wanted.append((int(brand_id), external_id, kind, f"o{message_id}", _summary(data)))
    if not wanted:
        return set()
    brand_ids = sorted({w[0] for w in wanted})
    # Arrays, not IN lists, on PostgreSQL: one statement text whatever the number of members (prepared once
    # per connection; a list made a new text, and a new prepared statement, for every pass).
    enabled = {
        int(b): controls_of(s).enabled
        for b, s in await session.execute(
            select(BrandRow.id, BrandRow.settings).where(one_of(session, BrandRow.id, brand_ids, BigInteger()))
        )
    }
    members: dict[tuple[int, str], int] = {}
    for brand_id in brand_ids:
        for externals in batches(session, sorted({w[1] for w in wanted if w[0] == brand_id})):
            found = await session.execute(
                select(MemberRow.external_id, MemberRow.id).where(
                    MemberRow.brand_id == brand_id, one_of(session, MemberRow.external_id, externals, String())
                )
            )
            members.update(((brand_id, e), int(i)) for e, i in found)
    values = []
    default = controls_of(None).enabled
    for brand_id, external_id, kind, source, data in wanted:
        member_id = members.get((brand_id, external_id))
        if member_id is None or kind not in enabled.get(brand_id, default):
            continue
        values.append(new_row(brand_id=brand_id, member_id=member_id, kind=kind, source=source, data=data, now=now))
    return await insert_rows(session, values)


def new_row(
    *, brand_id: int, member_id: int, kind: str, source: str, data: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The column values of a new notification (its email due at once; the mailer decides the rest)."""
    return {
        "brand_id": brand_id,
        "member_id": member_id,
        "kind": kind,
        "data": data,
        "source": source[:255],
        "created_at": now,
        "email_state": "pending",
        "email_due_at": now,
        "email_attempts": 0,
        "email_error": "",
    }


async def insert_rows(session: AsyncSession, values: list[dict[str, Any]]) -> set[tuple[int, int]]:
    """Insert notifications, skipping those already recorded; answers the ``(brand, member)`` pairs of new ones."""
    if not values:
        return set()
    # In member order, the order members are locked in: each row's foreign-key check share-locks its member's
    # key. The pipeline's member lock (FOR NO KEY UPDATE) does not conflict with that; a FOR UPDATE does (an
    # erasure, an enrolment update), and rows in outbox order once deadlocked with the units when those took
    # FOR UPDATE. The sort is stable: one member's rows keep their order.
    values = sorted(values, key=_member_order)
    table = cast("Table", NotificationRow.__table__)
    # One statement text whatever the number of rows (executemany: SQLAlchemy's "insertmanyvalues" batches
    # them), so it is compiled once, not once per size as a multi-row VALUES would be.
    result = await session.execute(
        insert_for(session)(table)
        .on_conflict_do_nothing(index_elements=["brand_id", "member_id", "source"])
        .returning(table.c.brand_id, table.c.member_id),
        values,
    )
    return {(int(b), int(m)) for b, m in result}


def _member_order(row: dict[str, Any]) -> tuple[int, int]:
    return row["brand_id"], row["member_id"]


async def items(
    session: AsyncSession, *, brand_id: int, member_id: int, limit: int = FEED_PAGE, before: int | None = None
) -> list[Item]:
    """The member's notifications, newest first (``before`` an id for the next page)."""
    query = select(NotificationRow).where(NotificationRow.brand_id == brand_id, NotificationRow.member_id == member_id)
    if before is not None:
        query = query.where(NotificationRow.id < before)
    rows = await session.scalars(query.order_by(NotificationRow.id.desc()).limit(limit))
    return [
        Item(id=r.id, kind=r.kind, data=dict(r.data or {}), created_at=r.created_at, read=r.read_at is not None)
        for r in rows
    ]


async def unread(session: AsyncSession, *, brand_id: int, member_id: int) -> int:
    """How many of the member's notifications are unread."""
    count = await session.scalar(
        select(func.count())
        .select_from(NotificationRow)
        .where(
            NotificationRow.brand_id == brand_id,
            NotificationRow.member_id == member_id,
            NotificationRow.read_at.is_(None),
        )
    )
    return int(count or 0)


async def mark_read(
    session: AsyncSession, *, brand_id: int, member_id: int, now: datetime, ids: list[int] | None = None
) -> int:
    """Mark the member's notifications ``ids`` (all when ``None``) read; answers how many changed."""
    query = update(NotificationRow).where(
        NotificationRow.brand_id == brand_id,
        NotificationRow.member_id == member_id,
        NotificationRow.read_at.is_(None),
    )
    if ids is not None:
        if not ids:
            return 0
        query = query.where(NotificationRow.id.in_(ids))
    result = await session.execute(query.values(read_at=now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def forget_member(session: AsyncSession, *, brand_id: int, member_id: int) -> None:
    """Erase a member's notifications and choices (the erasure hook)."""
    from sqlalchemy import delete

    from notifications.orm import NotificationChoiceRow

    await session.execute(
        delete(NotificationRow).where(NotificationRow.brand_id == brand_id, NotificationRow.member_id == member_id)
    )
    await session.execute(
        delete(NotificationChoiceRow).where(
            NotificationChoiceRow.brand_id == brand_id, NotificationChoiceRow.member_id == member_id
        )
    )

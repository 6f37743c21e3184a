"""The members of a unit of work: created where missing, locked for its transaction, or read ahead of it.

:func:`ensure_and_lock` is the pipeline's member lock (docs/architecture.md, "One event, end to end");
:func:`read_members` reads them without a lock, for work done before it (``engine.pipeline.Draft``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import msgspec
from sqlalchemy import BigInteger, bindparam, select

from engine.db import batches, insert_for, on_postgres, where_in_lists
from engine.ids import BrandId, MemberId
from engine.members import Member, _to_member
from engine.orm import MemberRow

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database


async def ensure_and_lock(
    session: AsyncSession, *, db: Database, brand_id: BrandId, external_ids: list[str], now: datetime,
    columns: Mapping[str, Any] | None = None,
) -> dict[str, Member]:  # fmt: skip
    """Create missing members and lock every one of them for the rest of the transaction.

    Existing rows are locked first and missing ones inserted (one statement on PostgreSQL:
    :data:`_LOCK_OR_CREATE`), and rows a concurrent request inserted meanwhile are locked after it commits. Locks are taken in a fixed order
    (id, then external id) so concurrent requests over overlapping members queue rather than deadlock; the
    lock serialises per-member processing, which keeps caps, progress and duplicate checks exact.

    ``columns`` (label → SQL expression correlated to ``members``) are read into :attr:`Member.facts`, for
    the domains' per-member values. On PostgreSQL they are read by a statement of their own once the locks
    are held: every column of a locking ``SELECT`` is computed in the snapshot the statement began
    with, so one that waited for a member's lock would miss what the unit holding it committed
    (``tests/integration/test_lock_columns.py``). SQLite has no row locks (one writer at a time): there
    they are read with the lock statement. A member created here has none of them (it has no history yet).
    """
    unique = sorted(set(external_ids))
    columns = columns or {}
    if on_postgres(session):
        found, created = await _lock_or_create(session, brand_id=brand_id, external_ids=unique, now=now)
        if columns and found:
            await _read_facts(session, brand_id=brand_id, found=found, columns=columns)
    else:
        found = await _lock_existing(session, brand_id=brand_id, external_ids=unique, columns=columns)
        missing = [external_id for external_id in unique if external_id not in found]
        created = await _create(session, brand_id, missing, now) if missing else []
    found.update((member.external_id, member) for member in created)
    raced = [external_id for external_id in unique if external_id not in found]
    if raced:  # inserted by a concurrent request: wait for its commit and lock them too
        found.update(await _lock_existing(session, brand_id=brand_id, external_ids=raced, columns=columns))
    return found


_LOCK_OR_CREATE = (
    "WITH locked AS (SELECT id, external_id, display_name, locale, attributes, created_at, tier FROM members"
    " WHERE brand_id = $1 AND external_id = ANY($2::varchar[]) ORDER BY id FOR NO KEY UPDATE),"
    " created AS (INSERT INTO members (brand_id, external_id, display_name, locale, attributes, created_at,"
    " updated_at, joined_via) SELECT $1::bigint, u.x, '', '', '{}'::jsonb, $3::timestamptz, $3::timestamptz, ''"
    " FROM unnest($2::varchar[]) WITH ORDINALITY AS u(x, n) WHERE u.x NOT IN (SELECT external_id FROM locked)"
    " ORDER BY u.n ON CONFLICT (brand_id, external_id) DO NOTHING RETURNING id, external_id)"
    " SELECT id, external_id, display_name, locale, attributes, created_at, tier, false FROM locked"
    " UNION ALL SELECT id, external_id, '', '', NULL, $3::timestamptz, NULL, true FROM created"
)
"""PostgreSQL: the unit's members locked, and the missing ones created, in one statement (one round trip).

``locked`` is :data:`_LOCK_POSTGRES`: the existing members in id order, each row locked as it is read.
``created`` inserts the others in the (sorted) order given. Its ``NOT IN`` is a hashed subplan, which reads
all of ``locked`` before the insert's first row: every existing member is locked before a new one is
inserted, the order of the two statements this replaced (a unit with a new member paid a round trip more;
``tests/integration/test_unit_plans.py`` checks the plan). A row a concurrent unit created meanwhile is
skipped (``DO NOTHING``): the caller waits for its commit and locks it. The text never changes, so asyncpg
prepares it once per connection (a multi-row ``VALUES`` insert had a new text for every number of rows,
parsed anew for each unit, and its rows bound one by one)."""


async def _lock_or_create(
    session: AsyncSession, *, brand_id: BrandId, external_ids: list[str], now: datetime
) -> tuple[dict[str, Member], list[Member]]:
    """PostgreSQL: lock the existing members and create the missing ones; returns (locked, created)."""
    locked: dict[str, Member] = {}
    created: list[Member] = []
    for row in await _driver_rows(session, _LOCK_OR_CREATE, (brand_id, external_ids, now)):
        member = _from_driver(row)
        if row[7]:  # the statement's last column: created here
            created.append(member)
        else:
            locked[member.external_id] = member
    return locked, created


async def _create(session: AsyncSession, brand_id: BrandId, external_ids: list[str], now: datetime) -> list[Member]:
    """SQLite: insert these members, skipping any created meanwhile; returns the ones created.

    PostgreSQL creates them with the lock (:data:`_LOCK_OR_CREATE`).
    """
    statement = (
        insert_for(session)(cast("Table", MemberRow.__table__))
        .on_conflict_do_nothing(index_elements=["brand_id", "external_id"])
        .returning(*_MEMBER_COLUMNS)
    )
    rows = [
        {
            "brand_id": brand_id,
            "external_id": external_id,
            "display_name": "",
            "locale": "",
            "attributes": {},
            "created_at": now,
            "updated_at": now,
        }
        for external_id in external_ids
    ]
    return [_to_member(row) for row in await session.execute(statement, rows)]


_MEMBER_COLUMNS = (
    MemberRow.__table__.c.id,
    MemberRow.__table__.c.external_id,
    MemberRow.__table__.c.display_name,
    MemberRow.__table__.c.locale,
    MemberRow.__table__.c.attributes,
    MemberRow.__table__.c.created_at,
    MemberRow.__table__.c.tier,
)


_LOCK = (
    select(*_MEMBER_COLUMNS)
    .where(
        MemberRow.brand_id == bindparam("brand_id"),
        MemberRow.external_id.in_(bindparam("external_ids", expanding=True)),
    )
    .order_by(MemberRow.id)
)
"""SQLite's member read: it has no row locks (one writer at a time). PostgreSQL locks with :data:`_LOCK_POSTGRES`."""


_LOCK_POSTGRES = (
    "SELECT id, external_id, display_name, locale, attributes, created_at, tier FROM members"
    " WHERE brand_id = $1 AND external_id = ANY($2::varchar[]) ORDER BY id FOR NO KEY UPDATE"
)
"""The member lock on PostgreSQL, run by the driver (a unit locks up to a thousand members, and their rows as
SQLAlchemy rows, then members, cost about as much CPU as the statement, all of it inside the locks).

``FOR NO KEY UPDATE``, the lock an update of the row takes, queues units over one member as ``FOR UPDATE``
would, and lets rows of other transactions that refer to the member (their foreign-key checks share-lock
its key) through without waiting for the unit (``tests/integration/test_feed_locks.py``)."""


_READ = (
    "SELECT id, external_id, display_name, locale, attributes, created_at, tier FROM members"
    " WHERE brand_id = $1 AND external_id = ANY($2::varchar[])"
)


async def read_members(session: AsyncSession, *, brand_id: BrandId, external_ids: list[str]) -> dict[str, Member]:
    """PostgreSQL: these members as they are now, without a lock (missing ones left out), by external id.

    For work done ahead of a unit's locks (``engine.pipeline.Draft``); the unit reads them again with its lock.
    """
    rows = await _driver_rows(session, _READ, (brand_id, external_ids))
    return {member.external_id: member for member in map(_from_driver, rows)}


async def _driver_rows(session: AsyncSession, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """PostgreSQL: ``sql``'s rows as the driver returns them (no SQLAlchemy rows: a unit reads up to 1000)."""
    connection = await session.connection()
    return cast("list[tuple[Any, ...]]", (await connection.exec_driver_sql(sql, parameters)).all())


def _from_driver(row: tuple[Any, ...]) -> Member:
    """A member from a driver row: ``id, external_id, display_name, locale, attributes, created_at, tier``."""
    id_, external_id, name, locale, attributes, created_at, tier = row[:7]
    return Member(
        id=MemberId(id_), external_id=external_id, display_name=name, locale=locale,
        attributes=attributes or {}, created_at=created_at, tier=tier,
    )  # fmt: skip


_FACTS = where_in_lists(
    select(MemberRow.id).where(MemberRow.brand_id == bindparam("brand_id")),
    (MemberRow.id, "ids", BigInteger()),
)


async def _lock_existing(
    session: AsyncSession, *, brand_id: BrandId, external_ids: list[str], columns: Mapping[str, Any] | None = None
) -> dict[str, Member]:
    found: dict[str, Member] = {}
    columns = columns or {}
    if on_postgres(session):
        rows = await _driver_rows(session, _LOCK_POSTGRES, (brand_id, external_ids))
        found.update((member.external_id, member) for member in map(_from_driver, rows))
        if columns and found:
            await _read_facts(session, brand_id=brand_id, found=found, columns=columns)
        return found
    statement = _LOCK
    together = bool(columns)  # see ensure_and_lock: read with the lock only without row locks
    labels = list(columns) if together else []
    if together:
        statement = statement.add_columns(*(expression.label(label) for label, expression in columns.items()))
    for chunk in batches(session, external_ids):
        for row in await session.execute(statement, {"brand_id": brand_id, "external_ids": chunk}):
            found[row.external_id] = _to_member(row, labels)
    return found


async def _read_facts(
    session: AsyncSession, *, brand_id: BrandId, found: dict[str, Member], columns: Mapping[str, Any]
) -> None:
    """Read ``columns`` of the locked members into their facts, in a snapshot taken after their locks."""
    statement = _FACTS.of(session).add_columns(*(expression.label(label) for label, expression in columns.items()))
    by_id = {member.id: external_id for external_id, member in found.items()}
    for chunk in batches(session, sorted(by_id)):
        for row in await session.execute(statement, {"brand_id": brand_id, "ids": chunk}):
            external_id = by_id[MemberId(row.id)]
            facts = {label: row._mapping[label] for label in columns}
            found[external_id] = msgspec.structs.replace(found[external_id], facts=facts)

"""Members: enrolment by API or implicitly on a first event, lookup by the brand's external id."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import msgspec
from sqlalchemy import BigInteger, Text, bindparam, func, select, update
from sqlalchemy import cast as sa_cast

from engine import publishing
from engine.db import batches, insert_for, on_postgres, one_of, where_in_lists
from engine.errors import NotFound
from engine.events import ExternalId, check_properties
from engine.ids import BrandId, MemberId
from engine.orm import EventRow, MemberRow, OutboxRow, WebhookDeliveryRow

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database

Locale = Annotated[str, msgspec.Meta(max_length=16, pattern=r"^([a-z]{2,3}([-_][A-Za-z0-9]{2,8})*)?$")]
DisplayName = Annotated[str, msgspec.Meta(max_length=200)]


class MemberIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Enrolment or update of a member."""

    external_id: ExternalId
    display_name: DisplayName = ""
    locale: Locale = ""
    attributes: dict[str, Any] = {}


class MemberEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One of a member's events, as stored in the event log."""

    id: str
    type: str
    occurred_at: datetime
    received_at: datetime
    properties: dict[str, Any]


class Member(msgspec.Struct, frozen=True, kw_only=True):
    """A member as the domain sees it."""

    id: MemberId
    external_id: str
    display_name: str
    locale: str
    attributes: dict[str, Any]
    created_at: datetime
    tier: str | None = None
    """The computed tier (the tiers domain keeps it); ``None`` when none is computed, ``""`` when it is none."""
    facts: dict[str, Any] = {}
    """Extra values read with the member's lock (``ensure_and_lock(columns=…)``), by label."""

    @property
    def predicate_view(self) -> dict[str, Any]:
        """What ``member.<name>`` resolves against in filters: attributes plus locale, and the computed tier.

        ``member.tier`` reads the computed tier when there is one, else a ``tier`` attribute the brand wrote.
        """
        return view_of(self.locale, self.attributes, self.tier)


def view_of(locale: str, attributes: dict[str, Any], tier: str | None) -> dict[str, Any]:
    """A member's predicate view from its stored parts."""
    view: dict[str, Any] = {"locale": locale, **attributes}
    if tier is not None:
        view["tier"] = tier or None  # "": computed, and no tier
    return view


def _to_member(row: Any, labels: Sequence[str] = ()) -> Member:
    return Member(
        id=MemberId(row.id),
        external_id=row.external_id,
        display_name=row.display_name,
        locale=row.locale,
        attributes=dict(row.attributes or {}),
        created_at=row.created_at,
        tier=row.tier,
        facts={label: row._mapping[label] for label in labels},
    )


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
    connection = await session.connection()
    locked: dict[str, Member] = {}
    created: list[Member] = []
    for id_, external_id, name, locale, attributes, created_at, tier, new in cast(
        "list[tuple[int, str, str, str, dict[str, Any] | None, datetime, str | None, bool]]",
        (await connection.exec_driver_sql(_LOCK_OR_CREATE, (brand_id, external_ids, now))).all(),
    ):
        member = Member(
            id=MemberId(id_), external_id=external_id, display_name=name, locale=locale,
            attributes=attributes or {}, created_at=created_at, tier=tier,
        )  # fmt: skip
        if new:
            created.append(member)
        else:
            locked[external_id] = member
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
    found: dict[str, Member] = {}
    connection = await session.connection()
    for id_, external_id, name, locale, attributes, created_at, tier in cast(
        "list[tuple[int, str, str, str, dict[str, Any] | None, datetime, str | None]]",
        (await connection.exec_driver_sql(_READ, (brand_id, external_ids))).all(),
    ):
        found[external_id] = Member(
            id=MemberId(id_), external_id=external_id, display_name=name, locale=locale,
            attributes=attributes or {}, created_at=created_at, tier=tier,
        )  # fmt: skip
    return found


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
        connection = await session.connection()
        for id_, external_id, name, locale, attributes, created_at, tier in cast(
            "list[tuple[int, str, str, str, dict[str, Any] | None, datetime, str | None]]",
            (await connection.exec_driver_sql(_LOCK_POSTGRES, (brand_id, external_ids))).all(),
        ):
            found[external_id] = Member(
                id=MemberId(id_), external_id=external_id, display_name=name, locale=locale,
                attributes=attributes or {}, created_at=created_at, tier=tier,
            )  # fmt: skip
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


async def upsert_member(db: Database, *, brand_id: BrandId, data: MemberIn, now: datetime) -> tuple[Member, bool]:
    """Enrol a member or update the given fields; returns the member and whether it was created.

    Raises:
        ValidationError: attributes over the size limits.
    """
    check_properties(data.attributes, path="$.attributes")
    async with db.write() as session:
        query = select(MemberRow).where(MemberRow.brand_id == brand_id, MemberRow.external_id == data.external_id)
        if db.is_postgres:
            query = query.with_for_update()
        row = await session.scalar(query)
        created = row is None
        if row is None:
            await ensure_and_lock(session, db=db, brand_id=brand_id, external_ids=[data.external_id], now=now)
            row = await session.scalar(query)
            assert row is not None
        row.display_name = data.display_name or row.display_name
        row.locale = data.locale or row.locale
        if data.attributes:
            row.attributes = {**(row.attributes or {}), **data.attributes}
        row.updated_at = now
        await session.flush()
        return _to_member(row), created


async def get_member(session: AsyncSession, *, brand_id: BrandId, external_id: str) -> Member:
    """The brand's member with ``external_id``.

    Raises:
        NotFound: no such member in this brand.
    """
    row = await session.scalar(
        select(MemberRow).where(MemberRow.brand_id == brand_id, MemberRow.external_id == external_id)
    )
    if row is None:
        raise NotFound(f"no member {external_id!r} in this brand", field="external_id")
    return _to_member(row)


async def members_by_id(session: AsyncSession, *, brand_id: BrandId, ids: list[MemberId]) -> dict[MemberId, Member]:
    """The brand's members with the given ids (missing ones are left out)."""
    if not ids:
        return {}
    found: dict[MemberId, Member] = {}
    for chunk in batches(session, ids):
        rows = await session.scalars(
            select(MemberRow).where(MemberRow.brand_id == brand_id, one_of(session, MemberRow.id, chunk, BigInteger()))
        )
        found.update((MemberId(r.id), _to_member(r)) for r in rows)
    return found


async def erase_member(session: AsyncSession, *, brand_id: BrandId, external_id: str, now: datetime) -> Member:
    """Pseudonymise a member inside the caller's transaction: identity gone, ledger kept; ``member.erased`` sent.

    The external id, display name, locale and attributes are replaced, so nothing in Questline links the
    remaining pseudonymous rows (ledger entries kept for accounting, events) back to the person.

    Raises:
        NotFound: no such member in this brand.
    """
    import secrets

    row = await session.scalar(
        select(MemberRow).where(MemberRow.brand_id == brand_id, MemberRow.external_id == external_id).with_for_update()
    )
    if row is None:
        raise NotFound(f"no member {external_id!r} in this brand", field="external_id")
    member = _to_member(row)
    pseudonym = f"erased-{secrets.token_hex(12)}"
    row.external_id = pseudonym
    row.display_name = ""
    row.locale = ""
    row.attributes = {"erased_at": now.isoformat()}
    row.tier = None
    row.updated_at = now
    await session.flush()
    # Event properties are free-form and may carry personal data: scrubbed, the events themselves kept.
    await session.execute(
        update(EventRow).where(EventRow.brand_id == brand_id, EventRow.member_id == row.id).values(properties={})
    )
    await _scrub_outbox(session, brand_id=brand_id, secrets_=(member.external_id, member.display_name), to=pseudonym)
    # Written after the scrub: the brand learns which of its ids to erase downstream, by its hash only.
    digest = hashlib.sha256(member.external_id.encode()).hexdigest()
    await publishing.publish(
        session, brand_id=brand_id, topic="member.erased", now=now,
        data={"member": pseudonym, "external_id_sha256": digest, "erased_at": now.isoformat()},
    )  # fmt: skip
    return member


def _replace(value: Any, needles: tuple[str, ...], to: str) -> Any:
    if isinstance(value, dict):
        return {k: _replace(v, needles, to) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, needles, to) for v in value]
    if isinstance(value, str) and value in needles:
        return to
    return value


async def _scrub_outbox(session: AsyncSession, *, brand_id: BrandId, secrets_: tuple[str, ...], to: str) -> None:
    """Replace the member's external id and name in webhook messages (sent or not) and answers with the pseudonym."""
    needles = tuple(n for n in secrets_ if n)
    for needle in needles:
        rows = await session.execute(
            select(OutboxRow.id, OutboxRow.payload).where(
                OutboxRow.brand_id == brand_id, sa_cast(OutboxRow.payload, Text).contains(needle, autoescape=True)
            )
        )
        for outbox_id, payload in rows.all():
            await session.execute(
                update(OutboxRow).where(OutboxRow.id == outbox_id).values(payload=_replace(payload, needles, to))
            )
        # An endpoint's answer may echo what it received: the delivery log's excerpts are scrubbed too.
        await session.execute(
            update(WebhookDeliveryRow)
            .where(
                WebhookDeliveryRow.brand_id == brand_id,
                WebhookDeliveryRow.body_excerpt.contains(needle, autoescape=True),
            )
            .values(body_excerpt=func.replace(WebhookDeliveryRow.body_excerpt, needle, to))
        )


async def member_events(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> list[MemberEvent]:
    """Every event of the member, in the order they occurred."""
    rows = await session.scalars(
        select(EventRow)
        .where(EventRow.brand_id == brand_id, EventRow.member_id == member_id)
        .order_by(EventRow.occurred_at, EventRow.id)
    )
    return [
        MemberEvent(
            id=r.event_key,
            type=r.type,
            occurred_at=r.occurred_at,
            received_at=r.received_at,
            properties=dict(r.properties),
        )
        for r in rows
    ]


async def member_views(
    session: AsyncSession, *, brand_id: BrandId, ids: set[MemberId]
) -> dict[MemberId, tuple[str, dict[str, Any]]]:
    """External id and predicate view (attributes plus locale) of the given members."""
    found: dict[MemberId, tuple[str, dict[str, Any]]] = {}
    for members in batches(session, sorted(ids)):
        rows = await session.execute(
            select(MemberRow.id, MemberRow.external_id, MemberRow.locale, MemberRow.attributes, MemberRow.tier).where(
                MemberRow.brand_id == brand_id, one_of(session, MemberRow.id, members, BigInteger())
            )
        )
        for member_id, ext, locale, attributes, tier in rows:
            found[MemberId(member_id)] = (ext, view_of(locale, dict(attributes or {}), tier))
    return found

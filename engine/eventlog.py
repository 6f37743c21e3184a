"""Queries of the event log (``event_log``): stored results for idempotency, and members' past events.

The pipeline writes the log (:mod:`engine.pipeline`); domains read it here to seed ``first`` rules,
replay a member's history, backfill a new definition or simulate a program.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import BigInteger, LargeBinary, String, and_, bindparam, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from engine.db import PerDialect, batches, one_of, where_in_lists
from engine.effects import effects_decoder
from engine.events import Event
from engine.ids import MemberId
from engine.orm import EventRow, MemberRow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from datetime import datetime

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.ids import BrandId

# Compiled once, run in autocommit: the brand's config version, and for each key one probe of the log's
# unique key (brand_id, event_key). Each probe is its own subquery with both columns equal, so no plan can
# read the brand's rows by an index on brand_id alone and filter the keys, whatever the statistics say of
# the brand; the brand is the parameter itself, so the log's partitions are pruned when the plan starts.
_KNOWN = text(
    "SELECT brands.config_version, k.key,"
    " (SELECT e.result FROM event_log e WHERE e.brand_id = :brand AND e.event_key = k.key)"
    " FROM brands CROSS JOIN unnest(:keys) AS k(key) WHERE brands.id = :brand"
).bindparams(bindparam("keys", type_=ARRAY(String())))


async def known_results(
    db: Database, *, brand_id: BrandId, keys: Sequence[str]
) -> tuple[int | None, dict[str, list[Any]]]:
    """The brand's config version and the stored effects of the already-logged events among ``keys``.

    Read before any transaction (no lock, no ``BEGIN``): a request of duplicates only is answered from this
    one look-up. On PostgreSQL it is one autocommit statement whatever the number of keys (a probe per
    key); elsewhere the version is left to the unit of work (``None``). Exactly-once still rests on the
    unique key: an event logged after this look-up makes the request's insert fail, and the retry sees it
    here.
    """
    if not db.is_postgres:
        async with db.read() as session:
            return None, await stored_results(session, brand_id=brand_id, keys=keys)
    found: dict[str, list[Any]] = {}
    version: int | None = None
    async with db.units_engine.connect() as pooled:  # the units' pool: a generic plan (Database.unit)
        connection = await pooled.execution_options(isolation_level="AUTOCOMMIT")  # no BEGIN, no COMMIT
        for config_version, key, result in await connection.execute(_KNOWN, {"brand": brand_id, "keys": list(keys)}):
            version = config_version
            if result is not None:  # logged (the column is NOT NULL)
                found[key] = list(effects_decoder.decode(result))
    return version, found


_STORE_RESULTS = text(
    "UPDATE event_log SET result = u.result FROM unnest(:keys, :results) AS u(key, result)"
    " WHERE event_log.brand_id = :brand AND event_log.event_key = u.key"
).bindparams(bindparam("keys", type_=ARRAY(String())), bindparam("results", type_=ARRAY(LargeBinary())))


async def rewrite_results(db: Database, *, brand_id: BrandId, results: Sequence[tuple[str, bytes]]) -> None:
    """Replace the stored result (encoded effects) of logged events: ``(event key, result)`` pairs.

    On PostgreSQL one autocommit statement (no ``BEGIN``/``COMMIT`` round trips; one statement is atomic
    by itself) on the units' pool, whatever the number of events; elsewhere one transaction.
    """
    if not results:
        return
    if not db.is_postgres:
        log = cast("Table", EventRow.__table__)  # Core, not the ORM: an executemany of plain rows
        statement = (
            update(log)
            .where(log.c.brand_id == bindparam("b_brand"), log.c.event_key == bindparam("b_key"))
            .values(result=bindparam("b_result"))
        )
        async with db.write() as session:
            await session.execute(
                statement, [{"b_brand": brand_id, "b_key": key, "b_result": result} for key, result in results]
            )
        return
    async with db.units_engine.connect() as pooled:
        connection = await pooled.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(
            _STORE_RESULTS,
            {"brand": brand_id, "keys": [key for key, _ in results], "results": [result for _, result in results]},
        )


async def stored_results(session: AsyncSession, *, brand_id: BrandId, keys: Sequence[str]) -> dict[str, list[Any]]:
    """The effects stored with each already-logged event of ``keys`` (what a duplicate is answered with)."""
    found: dict[str, list[Any]] = {}
    for chunk in batches(session, dict.fromkeys(keys)):
        # On PostgreSQL one array parameter, not an IN list of 500: with many bind parameters PostgreSQL
        # rebuilds the list for every row of the brand it scans, which grows with the event log.
        rows = await session.execute(
            select(EventRow.event_key, EventRow.result).where(
                EventRow.brand_id == brand_id, one_of(session, EventRow.event_key, chunk, String())
            )
        )
        for key, result in rows:
            found[key] = list(effects_decoder.decode(result))
    return found


def _event(
    key: str, external_id: str, type_: str, occurred_at: datetime, properties: Any, refunded: float = 0.0
) -> Event:
    props = dict(properties or {})
    if refunded:
        # A partial retraction refunded part of the amount: replays see what is left (engine.retraction).
        amount = props.get("amount")
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            props["amount"] = round(max(0.0, float(amount) - refunded), 6)
    return Event(id=key, member=external_id, type=type_, occurred_at=occurred_at, properties=props)


_LIVE = EventRow.retracted_at.is_(None)
"""Not retracted whole: every replay of the log (progress, backfill, simulation, boards) skips retracted events."""


_EARLIER = PerDialect(
    # One probe per member on PostgreSQL, by (brand_id, member_id, occurred_at): with the members as a list,
    # a generic plan made while the statistics predated the brand read the brand's events by time and
    # filtered them against the list (see challenges.states._STATES; tests/integration/test_unit_plans.py).
    text(
        "SELECT m.member_id, e.occurred_at, e.properties FROM unnest(:member_ids) AS m(member_id)"
        " CROSS JOIN LATERAL (SELECT event_log.occurred_at, event_log.properties FROM event_log"
        " WHERE event_log.brand_id = :brand_id AND event_log.member_id = m.member_id"
        " AND event_log.occurred_at < :before AND event_log.type = :event_type"
        " AND event_log.retracted_at IS NULL OFFSET 0) AS e"
    )
    .bindparams(
        bindparam("member_ids", type_=ARRAY(BigInteger())),
        bindparam("before", type_=EventRow.occurred_at.type),
        bindparam("event_type", type_=String()),
    )
    .columns(EventRow.member_id, EventRow.occurred_at, EventRow.properties),
    where_in_lists(  # SQLite: the members in an IN list
        select(EventRow.member_id, EventRow.occurred_at, EventRow.properties).where(
            EventRow.brand_id == bindparam("brand_id"),
            EventRow.type == bindparam("event_type"),
            EventRow.occurred_at < bindparam("before"),
            _LIVE,
        ),
        (EventRow.member_id, "member_ids", BigInteger()),
    ).other,
)


async def earlier_events(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    event_type: str,
    member_ids: set[MemberId],
    before: datetime,
) -> list[tuple[MemberId, datetime, dict[str, Any]]]:
    """Stored events of ``event_type`` of the members that occurred before ``before`` (for ``first``)."""
    found: list[tuple[MemberId, datetime, dict[str, Any]]] = []
    statement = _EARLIER.of(session)
    for members in batches(session, sorted(member_ids)):
        params = {"brand_id": brand_id, "member_ids": members, "event_type": event_type, "before": before}
        found.extend((MemberId(m), at, dict(props or {})) for m, at, props in await session.execute(statement, params))
    return found


async def member_events(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    member_id: MemberId,
    external_id: str,
    types: set[str] | None = None,
    since: datetime | None = None,
    received_since: datetime | None = None,
    limit: int = 5000,
    newest: bool = False,
    include_retracted: bool = False,
) -> list[tuple[Event, datetime]]:
    """A member's stored events with their arrival times, oldest first (or the newest ``limit``, still oldest first).

    ``since`` keeps events that occurred from then on; with ``received_since`` too, events received from
    that instant on are kept whenever they occurred. Events retracted whole are left out unless
    ``include_retracted``; a partly refunded event shows what is left of its ``amount``.
    """
    query = select(
        EventRow.event_key,
        EventRow.type,
        EventRow.occurred_at,
        EventRow.properties,
        EventRow.received_at,
        EventRow.refunded,
    ).where(EventRow.brand_id == brand_id, EventRow.member_id == member_id)
    if not include_retracted:
        query = query.where(_LIVE)
    if types is not None:
        query = query.where(EventRow.type.in_(types))
    if since is not None and received_since is not None:
        query = query.where(or_(EventRow.occurred_at >= since, EventRow.received_at >= received_since))
    elif since is not None:
        query = query.where(EventRow.occurred_at >= since)
    order = (EventRow.occurred_at.desc(), EventRow.id.desc()) if newest else (EventRow.occurred_at, EventRow.id)
    rows = list(await session.execute(query.order_by(*order).limit(limit)))
    if newest:
        rows.reverse()
    return [
        (_event(key, external_id, type_, at, props, refunded or 0.0), received)
        for key, type_, at, props, received, refunded in rows
    ]


async def retracted_among(
    session: AsyncSession, *, brand_id: BrandId, keys: Sequence[str]
) -> dict[str, tuple[datetime | None, float]]:
    """``(retracted at, refunded amount)`` of the events among ``keys`` that a retraction touched."""
    found: dict[str, tuple[datetime | None, float]] = {}
    for chunk in batches(session, dict.fromkeys(keys)):
        rows = await session.execute(
            select(EventRow.event_key, EventRow.retracted_at, EventRow.refunded).where(
                EventRow.brand_id == brand_id,
                one_of(session, EventRow.event_key, chunk, String()),
                or_(EventRow.retracted_at.is_not(None), EventRow.refunded > 0),
            )
        )
        for key, at, refunded in rows:
            found[key] = (at, float(refunded or 0.0))
    return found


async def members_with_events(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    types: set[str],
    since: datetime | None,
    received_since: datetime | None = None,
) -> list[tuple[MemberId, str, dict[str, Any]]]:
    """Members with an event of ``types`` that occurred since ``since`` (or was received since ``received_since``).

    Returns (id, external id, predicate view) by id.
    """
    window: list[Any] = []
    if since is not None and received_since is not None:
        window = [or_(EventRow.occurred_at >= since, EventRow.received_at >= received_since)]
    elif since is not None:
        window = [EventRow.occurred_at >= since]
    query = (
        select(MemberRow.id, MemberRow.external_id, MemberRow.locale, MemberRow.attributes)
        .where(MemberRow.brand_id == brand_id)
        .where(
            select(EventRow.id)
            .where(
                EventRow.brand_id == brand_id,
                EventRow.member_id == MemberRow.id,
                EventRow.type.in_(types),
                _LIVE,
                *window,
            )
            .exists()
        )
        .order_by(MemberRow.id)
    )
    rows = await session.execute(query)
    return [(MemberId(i), ext, {"locale": loc, **(attrs or {})}) for i, ext, loc, attrs in rows]


async def stream_events(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    since: datetime | None,
    until: datetime | None,
    types: set[str] | None = None,
    batch: int = 2000,
) -> AsyncIterator[list[tuple[MemberId, Event, datetime]]]:
    """The brand's stored events in ``[since, until)`` in occurrence order, a page at a time (keyset paging)."""
    after: tuple[datetime, int] | None = None
    while True:
        query = (
            select(
                EventRow.id,
                EventRow.member_id,
                MemberRow.external_id,
                EventRow.event_key,
                EventRow.type,
                EventRow.occurred_at,
                EventRow.properties,
                EventRow.received_at,
                EventRow.refunded,
            )
            .join(MemberRow, MemberRow.id == EventRow.member_id)
            .where(EventRow.brand_id == brand_id, _LIVE)
        )
        if since is not None:
            query = query.where(EventRow.occurred_at >= since)
        if until is not None:
            query = query.where(EventRow.occurred_at < until)
        if types is not None:
            query = query.where(EventRow.type.in_(types))
        if after is not None:
            query = query.where(
                or_(EventRow.occurred_at > after[0], and_(EventRow.occurred_at == after[0], EventRow.id > after[1]))
            )
        rows = list(await session.execute(query.order_by(EventRow.occurred_at, EventRow.id).limit(batch)))
        if not rows:
            return
        yield [
            (MemberId(member_id), _event(key, ext, type_, at, props, refunded or 0.0), received)
            for _id, member_id, ext, key, type_, at, props, received, refunded in rows
        ]
        last = rows[-1]
        after = (last[5], last[0])
        if len(rows) < batch:
            return

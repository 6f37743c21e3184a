"""PostgreSQL: a unit of work's rows written in one statement (one round trip), whatever the unit's size.

The pipeline's common case (earnings only: no debit, no inactivity expiry to settle first) writes ledger
lots, balance upserts, outbox messages and the event log. Here they are one statement of data-modifying
CTEs over ``unnest`` of one array per column: its text never changes, so asyncpg prepares it once per
connection, and a 1000-event batch costs the same parameter handling as one array per column, not one
bound row per event. The bigint, varchar, date and timestamp arrays travel as one text literal each, built
at a fraction of asyncpg's element-by-element cost for a list; JSON, long text and bytes stay lists
(:mod:`engine.array_literals`). What every row of the unit shares (its brand, its time) is sent once, not
once per row: a timestamp costs asyncpg about 0.8 µs of CPU to encode, and a 1000-event batch had about
3,000 of them in these columns, all encoded inside the members' locks. Every CTE runs exactly once, in the
one snapshot, as separate statements would in the transaction; a duplicate event still fails the event
log's unique key (and the pipeline retries).

A domain step's own upsert can ride along (:class:`Upsert`, through ``UnitOfWork.write_with_unit``): one
more CTE for its table (the challenges' member states and completions), so the step's write is no round trip
of its own.

SQLite and the other cases keep the per-table statements of :mod:`engine.pipeline`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from engine import array_literals

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

_LEDGER = (
    ("brand_id", "bigint"), ("member_id", "bigint"), ("event_key", "varchar"), ("points", "bigint"),
    ("source", "varchar"), ("key", "varchar"), ("reason", "text"), ("occurred_at", "timestamptz"),
    ("local_day", "date"), ("created_at", "timestamptz"), ("kind", "varchar"), ("lot_id", "bigint"),
    ("available_at", "timestamptz"), ("expires_at", "timestamptz"),
)  # fmt: skip
_BALANCES = (
    ("brand_id", "bigint"), ("member_id", "bigint"), ("available", "bigint"), ("pending", "bigint"),
    ("lifetime_earned", "bigint"), ("last_activity_at", "timestamptz"), ("updated_at", "timestamptz"),
)  # fmt: skip
_OUTBOX = (
    ("brand_id", "bigint"), ("message_id", "varchar"), ("topic", "varchar"), ("payload", "jsonb"),
    ("created_at", "timestamptz"), ("next_attempt_at", "timestamptz"),
)  # fmt: skip
_EVENTS = (
    ("brand_id", "bigint"), ("event_key", "varchar"), ("member_id", "bigint"), ("type", "varchar"),
    ("occurred_at", "timestamptz"), ("received_at", "timestamptz"), ("properties", "jsonb"), ("result", "bytea"),
)  # fmt: skip
_SHARED = {
    "brand_id": "$1::bigint", "created_at": "$2::timestamptz", "updated_at": "$2::timestamptz",
    "received_at": "$2::timestamptz", "next_attempt_at": "$2::timestamptz",
}  # fmt: skip
"""Columns every row of a unit holds the same value in: the unit's brand ($1) and its time ($2), sent once."""
_NOW_IF_NULL = frozenset({"available_at"})
"""Columns that hold the unit's time in most rows: those rows send NULL (``coalesce`` puts the time back)."""


def _unnest(columns: tuple[tuple[str, str], ...], first: int, *, ordered: bool = False) -> tuple[str, int]:
    """``SELECT … FROM unnest($first::text::t[], …)`` and the next free parameter number.

    Each array is a literal or a list (:mod:`engine.array_literals` says which, and how the select list
    turns its elements into the column's values); a :data:`_SHARED` column is the unit's parameter.
    ``ordered``: the rows are inserted in the arrays' order (``WITH ORDINALITY … ORDER BY``).
    """
    arrays: list[str] = []
    names: list[str] = []
    for name, kind in columns:
        if name in _SHARED:
            names.append(_SHARED[name])
            continue
        value = array_literals.column(kind, f"c{len(arrays)}")
        arrays.append(array_literals.parameter(kind, first + len(arrays)))
        if name in _NOW_IF_NULL:
            value = f"coalesce({value}, $2::timestamptz)"
        names.append(value)
    aliases = ", ".join(f"c{i}" for i in range(len(arrays)))
    source = f"unnest({', '.join(arrays)})"
    if ordered:
        return (
            f"SELECT {', '.join(names)} FROM {source} WITH ORDINALITY AS u({aliases}, n) ORDER BY u.n",
            first + len(arrays),
        )
    return f"SELECT {', '.join(names)} FROM {source} AS u({aliases})", first + len(arrays)


@dataclass(frozen=True, slots=True)
class Upsert:
    """A domain table a step writes in the unit's statement: its columns and what a conflict does.

    ``columns``: (name, PostgreSQL type) in insert order; ``brand_id`` and ``updated_at``/``created_at`` hold
    the unit's brand and time (sent once). ``conflict``: what follows ``ON CONFLICT``, e.g.
    ``"(brand_id, member_id) DO UPDATE SET state = excluded.state"``. ``ordered``: rows inserted in the
    order given (their ids in that order).
    """

    table: str
    columns: tuple[tuple[str, str], ...]
    conflict: str
    ordered: bool = False


def _build(upserts: tuple[Upsert, ...] = ()) -> str:
    at = 3  # $1: the unit's brand, $2: its time
    parts: list[str] = []
    for table, columns in (("ledger", _LEDGER), ("point_balances", _BALANCES), ("outbox", _OUTBOX)):
        names = ", ".join(n for n, _ in columns)
        select, at = _unnest(columns, at)
        if table == "point_balances":
            select += (
                " ON CONFLICT (member_id) DO UPDATE SET available = point_balances.available + excluded.available,"
                " pending = point_balances.pending + excluded.pending,"
                " lifetime_earned = point_balances.lifetime_earned + excluded.lifetime_earned,"
                " last_activity_at = greatest(coalesce(point_balances.last_activity_at, excluded.last_activity_at),"
                " excluded.last_activity_at), updated_at = excluded.updated_at"
            )
            names += ", lifetime_spent"
            select = select.replace(" FROM unnest(", ", 0 FROM unnest(", 1)
        elif table == "outbox":
            names += ", attempts, last_error, delivered_to"
            select = select.replace(" FROM unnest(", ", 0, '', '[]'::jsonb FROM unnest(", 1)
        parts.append(f"{table}_rows AS (INSERT INTO {table} ({names}) {select})")
    for upsert in upserts:
        select, at = _unnest(upsert.columns, at, ordered=upsert.ordered)
        names = ", ".join(n for n, _ in upsert.columns)
        parts.append(
            f"{upsert.table}_rows AS (INSERT INTO {upsert.table} ({names}) {select} ON CONFLICT {upsert.conflict})"
        )
    events = ", ".join(n for n, _ in _EVENTS)
    return f"WITH {', '.join(parts)} INSERT INTO event_log ({events}) {_unnest(_EVENTS, at)[0]}"


STATEMENT = _build()


@lru_cache(maxsize=32)
def _statement(upserts: tuple[Upsert, ...]) -> str:
    """The unit's statement with a CTE for each of ``upserts`` (one text per set: asyncpg prepares each once)."""
    return _build(upserts)


def _arrays(
    columns: tuple[tuple[str, str], ...], rows: list[dict[str, Any]], *, brand_id: int, now: datetime
) -> list[str | list[Any]]:
    """One array (a literal or a list) per column not shared by the unit; a row whose shared column differs is a bug."""
    shared = {"$1::bigint": brand_id, "$2::timestamptz": now}
    arrays: list[str | list[Any]] = []
    for name, kind in columns:
        if name in _SHARED:
            value = shared[_SHARED[name]]
            if rows and set(map(itemgetter(name), rows)) != {value}:
                raise ValueError(f"a row's {name} is not the unit's: it cannot be written as one value")
        elif name in _NOW_IF_NULL:
            arrays.append(array_literals.encode(kind, [None if row[name] == now else row[name] for row in rows]))
        else:
            arrays.append(array_literals.encode(kind, list(map(itemgetter(name), rows))))
    return arrays


async def write_unit(
    session: AsyncSession,
    *,
    brand_id: int,
    now: datetime,
    ledger: list[dict[str, Any]],
    balances: list[dict[str, Any]],
    outbox: list[dict[str, Any]],
    events: list[dict[str, Any]],
    upserts: Sequence[tuple[Upsert, list[dict[str, Any]]]] = (),
) -> None:
    """Insert the ledger lots, upsert the balances (by member id, in order), add outbox rows and log the events.

    Every row is of the unit of ``brand_id`` and written at ``now``. ``upserts``: domain rows written in the
    same statement (each :class:`Upsert` once).

    Raises:
        ValueError: a row's brand or write time is not the unit's, or an :class:`Upsert` comes twice.
    """
    ordered = sorted(balances, key=lambda row: row["member_id"])
    parameters: list[Any] = [brand_id, now]
    specs = tuple(upsert for upsert, _ in upserts)
    if len(set(specs)) != len(specs):
        raise ValueError("an upsert comes twice: its rows must be one list")
    tables = [(upsert.columns, rows) for upsert, rows in upserts]
    for columns, rows in ((_LEDGER, ledger), (_BALANCES, ordered), (_OUTBOX, outbox), *tables, (_EVENTS, events)):
        parameters += _arrays(columns, rows, brand_id=brand_id, now=now)
    connection = await session.connection()
    await connection.exec_driver_sql(_statement(specs) if specs else STATEMENT, tuple(parameters))


@dataclass(frozen=True, slots=True)
class RowsInsert:
    """PostgreSQL: a step's rows of one table in one ``INSERT … SELECT FROM unnest(…)`` whose text never changes.

    For rows a step needs written (or their ``RETURNING``) before the unit's one statement. An executemany
    insert is one multi-row ``VALUES`` statement with a new text for every number of rows, which
    PostgreSQL parses and plans again each time (thousands of parameters for a batch's rows); this is one
    array per column (literals where :mod:`engine.array_literals` says so), prepared once per connection.
    ``tail``: what follows the select, e.g. ``ON CONFLICT (…) DO NOTHING RETURNING uid``.
    """

    table: str
    columns: tuple[tuple[str, str], ...]
    tail: str = ""

    @property
    def sql(self) -> str:
        """The statement's text (``$1``… one array per column, in :attr:`columns` order)."""
        return _rows_insert_sql(self)

    async def execute(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> Any:
        """Insert ``rows`` (each with every column) in one round trip; returns the driver's result."""
        parameters = tuple(array_literals.encode(kind, [row[name] for row in rows]) for name, kind in self.columns)
        connection = await session.connection()
        return await connection.exec_driver_sql(self.sql, parameters)


@lru_cache(maxsize=64)
def _rows_insert_sql(insert: RowsInsert) -> str:
    arrays = [array_literals.parameter(kind, number) for number, (_, kind) in enumerate(insert.columns, start=1)]
    values = [array_literals.column(kind, f"c{index}") for index, (_, kind) in enumerate(insert.columns)]
    aliases = ", ".join(f"c{index}" for index in range(len(insert.columns)))
    names = ", ".join(name for name, _ in insert.columns)
    select = f"SELECT {', '.join(values)} FROM unnest({', '.join(arrays)}) AS u({aliases})"
    return f"INSERT INTO {insert.table} ({names}) {select} {insert.tail}".rstrip()

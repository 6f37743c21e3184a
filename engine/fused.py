"""PostgreSQL: a unit of work's rows written in one statement (one round trip), whatever the unit's size.

The pipeline's common case (earnings only: no debit, no inactivity expiry to settle first) writes ledger
lots, balance upserts, outbox messages and the event log. Here they are one statement of data-modifying
CTEs over ``unnest`` of one array per column: its text never changes, so asyncpg prepares it once per
connection, and a 1000-event batch costs the same parameter handling as one array per column, not one
bound row per event. Every CTE runs exactly once, in the one snapshot, as separate statements would in
the transaction; a duplicate event still fails the event log's unique key (and the pipeline retries).

SQLite and the other cases keep the per-table statements of :mod:`engine.pipeline`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

_ENCODE = msgspec.json.encode

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
_JSON = "jsonb"


def _unnest(columns: tuple[tuple[str, str], ...], first: int) -> str:
    """``SELECT … FROM unnest($first::t[], …)``; JSON travels as text and is cast per element."""
    arrays = ", ".join(f"${first + i}::{'text' if t == _JSON else t}[]" for i, (_, t) in enumerate(columns))
    names = ", ".join(f"c{i}::jsonb" if t == _JSON else f"c{i}" for i, (_, t) in enumerate(columns))
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    return f"SELECT {names} FROM unnest({arrays}) AS u({aliases})"


def _build() -> str:
    at = 1
    parts: list[str] = []
    for table, columns in (("ledger", _LEDGER), ("point_balances", _BALANCES), ("outbox", _OUTBOX)):
        names = ", ".join(n for n, _ in columns)
        select = _unnest(columns, at)
        at += len(columns)
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
    events = ", ".join(n for n, _ in _EVENTS)
    return f"WITH {', '.join(parts)} INSERT INTO event_log ({events}) {_unnest(_EVENTS, at)}"


STATEMENT = _build()


def _arrays(columns: tuple[tuple[str, str], ...], rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [_ENCODE(row[name]).decode() for row in rows] if kind == _JSON else [row[name] for row in rows]
        for name, kind in columns
    ]


async def write_unit(
    session: AsyncSession,
    *,
    ledger: list[dict[str, Any]],
    balances: list[dict[str, Any]],
    outbox: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> None:
    """Insert the ledger lots, upsert the balances (by member id, in order), add outbox rows and log the events."""
    ordered = sorted(balances, key=lambda row: row["member_id"])
    parameters = [
        *_arrays(_LEDGER, ledger),
        *_arrays(_BALANCES, ordered),
        *_arrays(_OUTBOX, outbox),
        *_arrays(_EVENTS, events),
    ]
    connection = await session.connection()
    await connection.exec_driver_sql(STATEMENT, tuple(parameters))

"""Hash partitions of ``event_log`` and ``ledger`` on PostgreSQL: listing them and splitting them.

Migration ``0013_partitions`` makes both tables ``PARTITION BY HASH (brand_id)`` with 8 partitions named
``<table>_p<modulus>_<remainder>``. A partition that grew too large is split in two: detached, replaced by
the two partitions of twice its modulus (remainders ``r`` and ``r + modulus``), its rows moved back through
the parent, and then dropped or kept detached as an archive
(``questline_archive.<name>_archived_<stamp>``). PostgreSQL
accepts partitions of different moduli as long as each modulus divides the larger ones, so one hot
partition can be split without touching the others. See docs/scaling.md "Partitioned PostgreSQL".

SQLite (the embedded default) has no partitions: every function here refuses it with a clear error.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import text

from engine.errors import Conflict, NotFound, ValidationError

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncConnection

    from engine.db import Database

#: The partitioned tables, parents first in the order a split locks them.
PARTITIONED = ("event_log", "ledger")
#: Keys onto ledger entries: the partitioned form names the brand in each (``0013_partitions``).
LEDGER_REFERENCES = (
    ("ledger", "fk_ledger_lot_id_ledger", "lot_id"),
    ("ledger_allocations", "fk_ledger_allocations_entry_id_ledger", "entry_id"),
    ("ledger_allocations", "fk_ledger_allocations_lot_id_ledger", "lot_id"),
    ("point_expiry_notices", "fk_point_expiry_notices_lot_id_ledger", "lot_id"),
)
#: Indexes whose partitioned form adds the partition key (a unique index must contain it).
PARTITION_SHAPED_INDEXES = frozenset({"uq_ledger_lot_kind"})
#: Where ``--archive`` keeps split partitions (out of the application's schema; dump or drop them there).
ARCHIVE_SCHEMA = "questline_archive"
_BOUND = re.compile(r"modulus (\d+), remainder (\d+)")

_LIST = text(
    "SELECT parent.relname, child.relname, pg_get_expr(child.relpartbound, child.oid),"
    " child.reltuples::bigint, pg_total_relation_size(child.oid)"
    " FROM pg_inherits i JOIN pg_class parent ON parent.oid = i.inhparent JOIN pg_class child ON child.oid = i.inhrelid"
    " JOIN pg_namespace n ON n.oid = parent.relnamespace"
    " WHERE n.nspname = current_schema() AND parent.relname = ANY(:tables) ORDER BY parent.relname, child.relname"
)


class Partition(msgspec.Struct, frozen=True, kw_only=True):
    """One hash partition of a partitioned table."""

    table: str
    name: str
    modulus: int
    remainder: int
    rows: int
    """PostgreSQL's estimate (``reltuples``; -1 before the first ANALYZE/VACUUM)."""
    bytes: int
    """Table, indexes and TOAST."""


def _require_postgres(db: Database) -> None:
    if not db.is_postgres:
        raise ValidationError("partitions exist on PostgreSQL only (SQLite tables are not partitioned)")


async def list_partitions(db: Database) -> list[Partition]:
    """The partitions of ``event_log`` and ``ledger`` (empty when the tables are not partitioned)."""
    _require_postgres(db)
    async with db.engine.connect() as connection:
        return await _partitions(connection)


async def _partitions(connection: AsyncConnection) -> list[Partition]:
    found: list[Partition] = []
    for table, name, bound, rows, size in await connection.execute(_LIST, {"tables": list(PARTITIONED)}):
        match = _BOUND.search(str(bound).lower())
        if match is None:  # not a hash partition (a table partitioned by hand some other way): left alone
            continue
        modulus, remainder = int(match.group(1)), int(match.group(2))
        found.append(
            Partition(table=table, name=name, modulus=modulus, remainder=remainder, rows=int(rows), bytes=int(size))
        )
    return found


async def split(db: Database, table: str, *, name: str | None, archive: bool, now: datetime) -> list[str]:
    """Split ``table``'s partition ``name`` (or, without it, each of its partitions) in two; returns the new names.

    One transaction: the parent is locked (writes to the table wait), the foreign keys onto ledger entries
    are dropped and re-added (and validated) around the move, so the split is all or nothing.

    Raises:
        ValidationError: not PostgreSQL, or not a partitioned table.
        NotFound: no partition ``name`` of ``table``.
    """
    _require_postgres(db)
    if table not in PARTITIONED:
        raise ValidationError(f"{table!r} is not partitioned; one of {', '.join(PARTITIONED)}", field="table")
    created: list[str] = []
    async with db.engine.begin() as connection:
        await connection.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        current = [p for p in await _partitions(connection) if p.table == table]
        if not current:
            raise Conflict(f"{table} is not partitioned: run `questline db upgrade` (PostgreSQL)")
        chosen = [p for p in current if name is None or p.name == name]
        if not chosen:
            raise NotFound(f"no partition {name!r} of {table}", field="partition")
        references = LEDGER_REFERENCES if table == "ledger" else ()
        for referring, constraint, _column in references:
            await connection.execute(text(f"ALTER TABLE {referring} DROP CONSTRAINT {constraint}"))
        stamp = now.strftime("%Y%m%d%H%M%S")
        for partition in chosen:
            created.extend(await _split_one(connection, partition, archive=archive, stamp=stamp))
        for referring, constraint, column in references:
            await connection.execute(
                text(
                    f"ALTER TABLE {referring} ADD CONSTRAINT {constraint}"
                    f" FOREIGN KEY ({column}, brand_id) REFERENCES ledger (id, brand_id)"
                )
            )
    return created


async def _split_one(connection: AsyncConnection, partition: Partition, *, archive: bool, stamp: str) -> list[str]:
    table, modulus = partition.table, partition.modulus * 2
    await connection.execute(text(f"ALTER TABLE {table} DETACH PARTITION {partition.name}"))
    names: list[str] = []
    for remainder in (partition.remainder, partition.remainder + partition.modulus):
        child = f"{table}_p{modulus}_{remainder}"
        await connection.execute(
            text(
                f"CREATE TABLE {child} PARTITION OF {table} FOR VALUES WITH (MODULUS {modulus}, REMAINDER {remainder})"
            )
        )
        names.append(child)
    await connection.execute(text(f"INSERT INTO {table} SELECT * FROM {partition.name}"))
    if archive:
        archived = f"{partition.name}_archived_{stamp}"
        await connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {ARCHIVE_SCHEMA}"))
        await connection.execute(text(f"ALTER TABLE {partition.name} RENAME TO {archived}"))
        await connection.execute(text(f"ALTER TABLE {archived} SET SCHEMA {ARCHIVE_SCHEMA}"))
    else:
        await connection.execute(text(f"DROP TABLE {partition.name}"))
    return names

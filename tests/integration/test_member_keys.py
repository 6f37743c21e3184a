"""The event log, ledger and balances name their member by (brand, member): one key, of the row's own brand.

Migration ``0014_member_keys`` replaced each table's two foreign keys (onto ``brands`` and onto ``members``)
with one onto ``members (brand_id, id)``: one check per row written instead of two, and a row whose member
is another brand's is refused (the two keys each let it through). Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import IntegrityError

from engine.orm import EventRow, LedgerRow, PointBalanceRow
from engine.tenants import create_brand
from tests.integration.ledger_helpers import member

TABLES = ("event_log", "ledger", "point_balances")


def _rows(brand_id: int, member_id: int, now) -> dict[str, dict[str, object]]:  # type: ignore[no-untyped-def]
    key = f"k-{uuid.uuid4().hex[:8]}"
    return {
        "event_log": {"brand_id": brand_id, "event_key": key, "member_id": member_id, "type": "visit",
                      "occurred_at": now, "received_at": now, "properties": {}, "result": b"[]"},
        "ledger": {"brand_id": brand_id, "member_id": member_id, "event_key": key, "points": 5, "source": "rule",
                   "key": "visit", "reason": "", "occurred_at": now, "local_day": now.date(), "created_at": now,
                   "kind": "earn", "available_at": now},
        "point_balances": {"brand_id": brand_id, "member_id": member_id, "available": 5, "pending": 0,
                           "lifetime_earned": 5, "lifetime_spent": 0, "updated_at": now},
    }  # fmt: skip


MODELS = {"event_log": EventRow, "ledger": LedgerRow, "point_balances": PointBalanceRow}


@pytest.mark.parametrize("table", TABLES)
async def test_a_row_whose_member_is_another_brands_is_refused(db, brand, clock, table):
    now = clock.now()
    other, _keys = await create_brand(db, name=f"other-{uuid.uuid4().hex[:6]}", timezone="Europe/Rome", now=now)
    theirs = (await member(db, other, "theirs", now)).id
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            await session.execute(insert(MODELS[table]), [_rows(brand.brand.id, theirs, now)[table]])
    async with db.read() as session:
        assert (await session.execute(select(MODELS[table]).where(MODELS[table].member_id == theirs))).first() is None
    ours = (await member(db, brand.brand, "ours", now)).id
    async with db.write() as session:  # the same row with a member of the row's brand is written
        await session.execute(insert(MODELS[table]), [_rows(brand.brand.id, ours, now)[table]])


async def test_each_table_has_one_key_onto_the_brands_members(db):
    def keys(sync) -> dict[str, list[tuple[tuple[str, ...], str, tuple[str, ...]]]]:  # type: ignore[no-untyped-def]
        inspector = inspect(sync)
        return {
            table: sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                for fk in inspector.get_foreign_keys(table)
                if fk["referred_table"] in ("brands", "members")
            )
            for table in TABLES
        }

    async with db.read() as session:
        connection = await session.connection()
        found = await connection.run_sync(keys)
    for table in TABLES:
        assert found[table] == [(("brand_id", "member_id"), "members", ("brand_id", "id"))], (table, found[table])

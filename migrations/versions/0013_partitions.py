"""engine: ``event_log`` and ``ledger`` partitioned by hash of brand on PostgreSQL (SQLite unchanged).

Each table becomes ``PARTITION BY HASH (brand_id)`` with 8 partitions (``<table>_p8_<remainder>``);
existing rows are copied over in this migration. PostgreSQL has no index spanning partitions, so every
unique key must contain the partition key: ``(brand_id, event_key)`` already does (the duplicate check
and exactly-once are unchanged), the primary keys become ``(id, brand_id)``, and the foreign keys onto
ledger entries (a lot's ``lot_id``, allocations, expiry notices) name the brand too. Why hash of brand
and not month of write time: docs/scaling.md "Partitioned PostgreSQL". More partitions later:
``questline db partitions split``.

Revision ID: 0013_partitions
Revises: 0010_webhook_deliveries (and after 0012_retractions)
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_partitions"
down_revision: str | Sequence[str] | None = ("0010_webhook_deliveries", "0012_retractions")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None  # after the retractions branch: it copies event_log with its columns

MODULUS = 8

_EVENT_LOG_AFTER = (
    "CREATE INDEX ix_event_log_brand_time ON event_log (brand_id, occurred_at)",
    "CREATE INDEX ix_event_log_member_time ON event_log (brand_id, member_id, occurred_at)",
    "ALTER TABLE event_log ADD CONSTRAINT fk_event_log_brand_id_brands"
    " FOREIGN KEY (brand_id) REFERENCES brands (id) ON DELETE CASCADE",
    "ALTER TABLE event_log ADD CONSTRAINT fk_event_log_member_id_members"
    " FOREIGN KEY (member_id) REFERENCES members (id) ON DELETE CASCADE",
)
_LEDGER_INDEXES = (
    "CREATE INDEX ix_ledger_cap ON ledger (brand_id, member_id, key, local_day)",
    "CREATE INDEX ix_ledger_dated ON ledger (expires_at) WHERE kind = 'earn' AND expires_at IS NOT NULL",
    "CREATE INDEX ix_ledger_event ON ledger (brand_id, event_key) WHERE event_key IS NOT NULL",
    "CREATE INDEX ix_ledger_held ON ledger (available_at) WHERE kind = 'earn' AND available_at > created_at",
    "CREATE INDEX ix_ledger_lots ON ledger (brand_id, member_id, id) WHERE kind = 'earn'",
    "CREATE INDEX ix_ledger_member ON ledger (brand_id, member_id, id)",
    "ALTER TABLE ledger ADD CONSTRAINT fk_ledger_brand_id_brands"
    " FOREIGN KEY (brand_id) REFERENCES brands (id) ON DELETE CASCADE",
    "ALTER TABLE ledger ADD CONSTRAINT fk_ledger_member_id_members"
    " FOREIGN KEY (member_id) REFERENCES members (id) ON DELETE CASCADE",
    "CREATE TRIGGER ledger_append_only BEFORE DELETE OR UPDATE ON ledger"
    " FOR EACH ROW EXECUTE FUNCTION ledger_append_only()",
)
#: The keys onto ledger entries: (table, constraint, columns) — the brand is added to each when partitioned.
_LEDGER_REFERENCES = (
    ("ledger", "fk_ledger_lot_id_ledger", "lot_id"),
    ("ledger_allocations", "fk_ledger_allocations_entry_id_ledger", "entry_id"),
    ("ledger_allocations", "fk_ledger_allocations_lot_id_ledger", "lot_id"),
    ("point_expiry_notices", "fk_point_expiry_notices_lot_id_ledger", "lot_id"),
)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _rebuild(table: str, *, partitioned: bool) -> None:
    """Recreate ``table`` (partitioned by hash of brand, or plain) with its rows, keeping its id sequence."""
    old = f"{table}_before_0010"
    op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY NONE")
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    shape = " PARTITION BY HASH (brand_id)" if partitioned else ""
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS){shape}")
    if partitioned:
        for remainder in range(MODULUS):
            op.execute(
                f"CREATE TABLE {table}_p{MODULUS}_{remainder} PARTITION OF {table}"
                f" FOR VALUES WITH (MODULUS {MODULUS}, REMAINDER {remainder})"
            )
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    op.execute(f"DROP TABLE {old}")
    op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
    key = "id, brand_id" if partitioned else "id"
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({key})")


def _convert(*, partitioned: bool) -> None:
    brand = ", brand_id" if partitioned else ""
    for table, name, _column in _LEDGER_REFERENCES:
        if table != "ledger":
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    _rebuild("event_log", partitioned=partitioned)
    op.execute("ALTER TABLE event_log ADD CONSTRAINT uq_event_log_brand_id_event_key UNIQUE (brand_id, event_key)")
    for statement in _EVENT_LOG_AFTER:
        op.execute(statement)
    _rebuild("ledger", partitioned=partitioned)
    for statement in _LEDGER_INDEXES:
        op.execute(statement)
    lot_key = "brand_id, lot_id, kind" if partitioned else "lot_id, kind"
    op.execute(f"CREATE UNIQUE INDEX uq_ledger_lot_kind ON ledger ({lot_key}) WHERE lot_id IS NOT NULL")
    for table, name, column in _LEDGER_REFERENCES:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}{brand}) REFERENCES ledger (id{brand})"
        )


def upgrade() -> None:
    """On PostgreSQL, partition ``event_log`` and ``ledger`` by hash of brand (rows copied); nothing on SQLite."""
    if _postgres():
        _convert(partitioned=True)


def downgrade() -> None:
    """Back to plain tables with the keys of 0009 (rows copied)."""
    if _postgres():
        _convert(partitioned=False)

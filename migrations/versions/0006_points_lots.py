"""engine: points lots, allocations, per-member balances with no-overdraft CHECKs, expiry notices

Ledger entries gain a ``kind`` (``earn`` lots, ``spend``, ``expire``, ``cancel``, ``release``), a
``lot_id`` (the lot an expire/cancel/release acts on, unique per lot and kind), and a lot's
``available_at`` / ``expires_at``. ``ledger_allocations`` (append-only) says how much of which lot each
consuming entry took; ``point_balances`` holds each member's figures under ``CHECK (available >= 0)``.

Backfill: existing positive entries become lots available since they were written, with no expiry;
negative entries become spends consuming the oldest lots first. Where old adjustments took a member
below zero, the debt cannot be covered by lots: the migration writes it off with one ``writeoff`` entry
(source ``migration``, positive points, no lot) per uncovered spend, so the ledger still sums to the
balance and the balance starts at zero rather than negative. Updating ``kind`` and ``available_at`` of
existing rows is the one time the ledger's append-only triggers are lifted, inside this migration.

Revision ID: 0006_points_lots
Revises: 0001_engine
Create Date: 2026-12-06
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import engine.db

revision: str = "0006_points_lots"
down_revision: str | Sequence[str] | None = "0001_engine"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = engine.db.UtcDateTime(timezone=True)
PARTIAL = {
    "ix_ledger_lots": (["brand_id", "member_id", "id"], "kind = 'earn'", False),
    "ix_ledger_held": (["available_at"], "kind = 'earn' AND available_at > created_at", False),
    "ix_ledger_dated": (["expires_at"], "kind = 'earn' AND expires_at IS NOT NULL", False),
    "uq_ledger_lot_kind": (["lot_id", "kind"], "lot_id IS NOT NULL", True),
    "ix_ledger_event": (["brand_id", "event_key"], "event_key IS NOT NULL", False),
}


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.add_column("ledger", sa.Column("kind", sa.String(length=8), server_default="earn", nullable=False))
    if _postgres():
        op.add_column("ledger", sa.Column("lot_id", BIG, nullable=True))
        op.create_foreign_key(op.f("fk_ledger_lot_id_ledger"), "ledger", "ledger", ["lot_id"], ["id"])
    else:  # SQLite adds a referencing column in place (no table rebuild, so the triggers stay)
        op.execute("ALTER TABLE ledger ADD COLUMN lot_id INTEGER REFERENCES ledger (id)")
    op.add_column("ledger", sa.Column("available_at", WHEN, nullable=True))
    op.add_column("ledger", sa.Column("expires_at", WHEN, nullable=True))
    for name, (columns, where, unique) in PARTIAL.items():
        op.create_index(
            name,
            "ledger",
            columns,
            unique=unique,
            postgresql_where=sa.text(where),
            sqlite_where=sa.text(where),
        )
    op.create_table(
        "ledger_allocations",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("entry_id", BIG, nullable=False),
        sa.Column("lot_id", BIG, nullable=False),
        sa.Column("points", BIG, nullable=False),
        sa.CheckConstraint("points > 0", name=op.f("ck_ledger_allocations_points_positive")),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_ledger_allocations_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["entry_id"], ["ledger.id"], name=op.f("fk_ledger_allocations_entry_id_ledger")),
        sa.ForeignKeyConstraint(["lot_id"], ["ledger.id"], name=op.f("fk_ledger_allocations_lot_id_ledger")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_allocations")),
        sa.UniqueConstraint("entry_id", "lot_id", name=op.f("uq_ledger_allocations_entry_id")),
    )
    op.create_index("ix_ledger_allocations_lot", "ledger_allocations", ["lot_id", "points"], unique=False)
    op.create_table(
        "point_balances",
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("available", BIG, nullable=False),
        sa.Column("pending", BIG, nullable=False),
        sa.Column("lifetime_earned", BIG, nullable=False),
        sa.Column("lifetime_spent", BIG, nullable=False),
        sa.Column("last_activity_at", WHEN, nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.CheckConstraint("available >= 0", name=op.f("ck_point_balances_available_nonnegative")),
        sa.CheckConstraint("pending >= 0", name=op.f("ck_point_balances_pending_nonnegative")),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_point_balances_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_point_balances_member_id_members"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_point_balances")),
    )
    op.create_index("ix_point_balances_activity", "point_balances", ["brand_id", "last_activity_at"], unique=False)
    op.create_table(
        "point_expiry_notices",
        sa.Column("lot_id", BIG, nullable=False),
        sa.Column("days_before", sa.Integer(), nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_point_expiry_notices_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["lot_id"], ["ledger.id"], name=op.f("fk_point_expiry_notices_lot_id_ledger")),
        sa.PrimaryKeyConstraint("lot_id", "days_before", name=op.f("pk_point_expiry_notices")),
    )
    op.create_index(op.f("ix_point_expiry_notices_brand_id"), "point_expiry_notices", ["brand_id"], unique=False)
    _allocations_append_only()
    _backfill()


def _allocations_append_only() -> None:
    if _postgres():
        op.execute(
            "CREATE TRIGGER ledger_allocations_append_only BEFORE UPDATE OR DELETE ON ledger_allocations "
            "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
        )
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER ledger_allocations_no_{action.lower()} BEFORE {action} ON ledger_allocations "
            "BEGIN SELECT RAISE(ABORT, 'the points ledger is append-only'); END"
        )


def _lift_ledger_triggers(lift: bool) -> None:
    if _postgres():
        op.execute(f"ALTER TABLE ledger {'DISABLE' if lift else 'ENABLE'} TRIGGER ledger_append_only")
        return
    for action in ("UPDATE", "DELETE"):
        name = f"ledger_no_{action.lower()}"
        if lift:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        else:
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {action} ON ledger "
                "BEGIN SELECT RAISE(ABORT, 'the points ledger is append-only'); END"
            )


def _backfill() -> None:
    bind = op.get_bind()
    _lift_ledger_triggers(True)
    bind.execute(sa.text("UPDATE ledger SET kind = 'spend' WHERE points < 0"))
    bind.execute(sa.text("UPDATE ledger SET available_at = created_at WHERE points > 0"))
    _lift_ledger_triggers(False)
    now = datetime.now(UTC)
    rows = bind.execute(
        sa.text(
            "SELECT id, brand_id, member_id, points, occurred_at, local_day FROM ledger "
            "WHERE points <> 0 ORDER BY member_id, id"
        )
    ).all()
    member: Any = None
    state: dict[str, Any] = {}
    for row in rows:
        if row.member_id != member:
            _finish(bind, state, now)
            member = row.member_id
            state = {"brand": row.brand_id, "member": row.member_id, "lots": [], "earned": 0, "spent": 0, "last": None}
        _replay_row(bind, state, row, now)
    _finish(bind, state, now)


def _replay_row(bind: Any, state: dict[str, Any], row: Any, now: datetime) -> None:
    occurred = row.occurred_at
    state["last"] = occurred if state["last"] is None else max(state["last"], occurred)
    if row.points > 0:
        state["lots"].append([row.id, row.points])
        state["earned"] += row.points
        return
    need = -row.points
    state["spent"] += need
    for lot in state["lots"]:
        if need == 0:
            break
        take = min(lot[1], need)
        if take:
            bind.execute(
                sa.text("INSERT INTO ledger_allocations (brand_id, entry_id, lot_id, points) VALUES (:b, :e, :l, :p)"),
                {"b": state["brand"], "e": row.id, "l": lot[0], "p": take},
            )
            lot[1] -= take
            need -= take
    if need:  # an old overdraft: written off so the balance starts at zero (see the module docstring)
        state["spent"] -= need
        bind.execute(
            sa.text(
                "INSERT INTO ledger (brand_id, member_id, event_key, points, source, key, reason, occurred_at, "
                "local_day, created_at, kind) VALUES (:b, :m, NULL, :p, 'migration', 'overdraft', :r, :o, :d, :c, "
                "'writeoff')"
            ),
            {
                "b": state["brand"],
                "m": state["member"],
                "p": need,
                "r": f"overdraft written off when points became lots (entry {row.id})",
                "o": occurred,
                "d": row.local_day,
                "c": _param(bind, now),
            },
        )


def _param(bind: Any, value: datetime) -> Any:
    return value.replace(tzinfo=None) if bind.dialect.name == "sqlite" else value


def _finish(bind: Any, state: dict[str, Any], now: datetime) -> None:
    if not state:
        return
    bind.execute(
        sa.text(
            "INSERT INTO point_balances (member_id, brand_id, available, pending, lifetime_earned, lifetime_spent, "
            "last_activity_at, updated_at) VALUES (:m, :b, :a, 0, :e, :s, :l, :u)"
        ),
        {
            "m": state["member"],
            "b": state["brand"],
            "a": sum(lot[1] for lot in state["lots"]),
            "e": state["earned"],
            "s": state["spent"],
            "l": state["last"],
            "u": _param(bind, now),
        },
    )


def downgrade() -> None:
    if _postgres():
        op.execute("DROP TRIGGER IF EXISTS ledger_allocations_append_only ON ledger_allocations")
    op.drop_index(op.f("ix_point_expiry_notices_brand_id"), table_name="point_expiry_notices")
    op.drop_table("point_expiry_notices")
    op.drop_index("ix_point_balances_activity", table_name="point_balances")
    op.drop_table("point_balances")
    op.drop_index("ix_ledger_allocations_lot", table_name="ledger_allocations")
    op.drop_table("ledger_allocations")
    for name in PARTIAL:
        op.drop_index(name, table_name="ledger")
    if _postgres():
        op.drop_constraint(op.f("fk_ledger_lot_id_ledger"), "ledger", type_="foreignkey")
        for column in ("expires_at", "available_at", "lot_id", "kind"):
            op.drop_column("ledger", column)
        return
    # SQLite cannot drop a referencing column in place: rebuild the table, then restore its triggers.
    _lift_ledger_triggers(True)
    with op.batch_alter_table("ledger", recreate="always") as batch:
        for column in ("expires_at", "available_at", "lot_id", "kind"):
            batch.drop_column(column)
    _lift_ledger_triggers(False)

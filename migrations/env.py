"""Alembic environment: runs migrations over the async engine for PostgreSQL and SQLite alike."""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Any

from alembic import context

from engine.db import Base, create_engine
from engine.schema import TABLE_MODULES

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# Every package that owns tables registers them on Base.metadata when imported (for autogenerate).
for module in TABLE_MODULES:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite alters a table by copying it, dropping the old one and renaming the copy. With foreign keys
        # on, dropping a referenced table deletes its rows first (cascading into others, or failing on a
        # reference): SQLite's documented procedure turns them off for the change and checks them after.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"the migration left rows with a broken foreign key: {broken[:10]}")


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Run against the URL given in ``sqlalchemy.url`` (set by ``engine.schema``)."""
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set QUESTLINE_DATABASE_URL")
    connection: Any = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run `questline db upgrade`")
run_migrations_online()

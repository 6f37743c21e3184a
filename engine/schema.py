"""Schema migrations (Alembic) run from code: ``questline db upgrade`` and the embedded start-up."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at Questline's migrations and ``database_url``."""
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_sync(database_url: str, revision: str = "heads") -> None:
    """Upgrade the database at ``database_url`` to ``revision`` (blocking)."""
    command.upgrade(alembic_config(database_url), revision)


async def upgrade(database_url: str, revision: str = "heads") -> None:
    """Upgrade without blocking the event loop (Alembic's env runs its own loop in a worker thread)."""
    await asyncio.to_thread(upgrade_sync, database_url, revision)

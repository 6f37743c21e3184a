"""Schema migrations (Alembic) run from code: ``questline db upgrade`` and the embedded start-up."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent

#: Every package that owns tables (its ``orm`` module registers them on ``Base.metadata`` when imported):
#: the migrations' environment and ``questline db check`` both read this one list.
TABLE_MODULES = (
    "engine.orm",
    "engine.records",
    "challenges.orm",
    "badges.orm",
    "leaderboards.orm",
    "rewards.orm",
    "integrations.orm",
    "enrollment.orm",
    "referrals.orm",
    "tiers.orm",
    "wallet.orm",
    "segments.orm",
    "notifications.orm",
    "leagues.orm",
)


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at Questline's migrations and ``database_url``."""
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_sync(database_url: str, revision: str = "heads") -> None:
    """Upgrade the database at ``database_url`` to ``revision`` (blocking).

    Alembic's environment runs its own event loop, so when called from inside a running loop the upgrade
    runs in a worker thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(alembic_config(database_url), revision)
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.upgrade, alembic_config(database_url), revision).result()


async def upgrade(database_url: str, revision: str = "heads") -> None:
    """Upgrade without blocking the event loop (Alembic's env runs its own loop in a worker thread)."""
    await asyncio.to_thread(upgrade_sync, database_url, revision)

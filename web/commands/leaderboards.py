"""`questline leaderboards …`: rebuild Redis from SQL, close ended periods."""

from __future__ import annotations

import click

from engine.clock import SystemClock
from engine.ids import BrandId


def register(cli: click.Group) -> None:
    """Add this package's commands to the `questline` command group."""
    cli.add_command(leaderboards)


@click.group()
def leaderboards() -> None:
    """Leaderboards: rebuild Redis from SQL, close ended periods."""


@leaderboards.command("rebuild")
@click.option("--brand", "slug", default=None, help="Only this brand (slug); default: every brand with boards.")
@click.option("--board", "board_key", default=None, help="Only this board key.")
def rebuild_command(slug: str | None, board_key: str | None) -> None:
    """Recompute the Redis boards from the SQL totals so Redis is identical to SQL."""
    from engine.db import Database
    from engine.tenants import get_brand
    from leaderboards.service import Leaderboards
    from web.app import create_redis
    from web.cli import open_database, run, settings_from_env

    settings = settings_from_env()
    if settings.uses_fake_redis:
        click.echo("note: QUESTLINE_REDIS_URL is the in-process fake; the embedded server rebuilds at start", err=True)

    async def body() -> None:
        database: Database = await open_database(settings)
        redis = create_redis(settings)
        try:
            brand_id: BrandId | None = None
            if slug is not None:
                async with database.read() as session:
                    brand_id = (await get_brand(session, slug)).id
            lb = Leaderboards(
                database, redis, namespace=settings.redis_namespace, clock=SystemClock(), close_interval=None
            )
            report = await lb.rebuild(brand_id=brand_id, board_key=board_key)
        finally:
            await redis.aclose()
            await database.dispose()
        click.echo(
            f"rebuilt {report.brands} brand(s), {report.boards} board(s): {report.keys} key(s), "
            f"{report.members} standing(s); {report.deleted} stale key(s) deleted"
        )
        for skipped in report.skipped:
            click.echo(f"brand {skipped} skipped: another worker is rebuilding it", err=True)

    run(body)


@leaderboards.command("close-periods")
@click.option("--brand", "slug", default=None, help="Only this brand (slug).")
def close_periods_command(slug: str | None) -> None:
    """Close every ended period (after its grace): archive the standings, pay rewards, expire old keys."""
    from engine.db import Database
    from engine.tenants import get_brand
    from leaderboards.service import Leaderboards
    from web.app import create_redis
    from web.cli import open_database, run, settings_from_env

    settings = settings_from_env()

    async def body() -> None:
        database: Database = await open_database(settings)
        redis = create_redis(settings)
        try:
            brand_id: BrandId | None = None
            if slug is not None:
                async with database.read() as session:
                    brand_id = (await get_brand(session, slug)).id
            lb = Leaderboards(
                database, redis, namespace=settings.redis_namespace, clock=SystemClock(), close_interval=None
            )
            closed = await lb.close_periods(brand_id=brand_id)
        finally:
            await redis.aclose()
            await database.dispose()
        for name in closed:
            click.echo(f"closed {name}")
        click.echo(f"{len(closed)} period(s) closed")

    run(body)

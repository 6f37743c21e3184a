"""`questline leaderboards …`: rebuild Redis from SQL, close ended periods (with the server's wiring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from engine.ids import BrandId
from web.commands import run, services_for, settings_from_env

if TYPE_CHECKING:
    from web.deps import Services


def register(cli: click.Group) -> None:
    """Add this package's commands to the `questline` command group."""
    cli.add_command(leaderboards)


@click.group()
def leaderboards() -> None:
    """Leaderboards: rebuild Redis from SQL, close ended periods."""


async def _brand_id(services: Services, slug: str | None) -> BrandId | None:
    """The id of brand ``slug``, or None for every brand."""
    from engine.tenants import get_brand

    if slug is None:
        return None
    async with services.db.read() as session:
        return (await get_brand(session, slug)).id


@leaderboards.command("rebuild")
@click.option("--brand", "slug", default=None, help="Only this brand (slug); default: every brand with boards.")
@click.option("--board", "board_key", default=None, help="Only this board key.")
def rebuild_command(slug: str | None, board_key: str | None) -> None:
    """Recompute the Redis boards from the SQL totals so Redis is identical to SQL."""
    settings = settings_from_env()
    if settings.uses_fake_redis:
        click.echo("note: QUESTLINE_REDIS_URL is the in-process fake; the embedded server rebuilds at start", err=True)

    async def body() -> None:
        async with services_for(settings) as services:
            report = await services.leaderboards.rebuild(brand_id=await _brand_id(services, slug), board_key=board_key)
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
    """Close every ended period (after its grace): archive the standings, pay rewards, expire old keys.

    Rewards are paid as the server pays them: points through the ledger, badges through the badges package.
    """
    settings = settings_from_env()

    async def body() -> None:
        async with services_for(settings) as services:
            closed = await services.leaderboards.close_periods(brand_id=await _brand_id(services, slug))
        for name in closed:
            click.echo(f"closed {name}")
        click.echo(f"{len(closed)} period(s) closed")

    run(body)

"""`questline points …`: release pending points whose holding period ended, expire due lots (server wiring).

The server runs both every ``QUESTLINE_POINTS_JOBS_SECONDS``; these commands run them once (e.g. from cron
when the interval is 0). Both are idempotent: each lot is released or expired at most once, whoever runs.
"""

from __future__ import annotations

import click

from engine import settlement
from web.commands import run, services_for, settings_from_env


def register(cli: click.Group) -> None:
    """Add this package's commands to the `questline` command group."""
    cli.add_command(points)


@click.group()
def points() -> None:
    """Points: release pending points, expire due points."""


@points.command("release")
def release_command() -> None:
    """Make held points available whose holding period has ended."""
    settings = settings_from_env()

    async def body() -> None:
        async with services_for(settings) as services:
            result = await settlement.release_due(services.db, now=services.clock.now())
        click.echo(f"released {result.released} point(s) for {result.members} member(s)")

    run(body)


@points.command("expire")
def expire_command() -> None:
    """Expire what is left of lots past their date (and inactive members' points); send expiring notices."""
    settings = settings_from_env()

    async def body() -> None:
        async with services_for(settings) as services:
            result = await settlement.expire_due(services.db, now=services.clock.now())
            services.outbox.notify()
        click.echo(f"expired {result.expired} point(s) for {result.members} member(s); {result.notices} notice(s) sent")

    run(body)

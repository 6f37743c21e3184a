"""`questline db partitions`: list and split the hash partitions of ``event_log`` and ``ledger`` (PostgreSQL)."""

from __future__ import annotations

import click

from web.commands import run, services_for, settings_from_env


@click.group("partitions")
def partitions_group() -> None:
    """Hash partitions of the event log and the ledger (PostgreSQL; see docs/scaling.md)."""


@partitions_group.command("list")
def list_command() -> None:
    """Each partition with its hash bound, estimated rows and size."""
    from engine.partitions import list_partitions

    settings = settings_from_env()

    async def body() -> None:
        async with services_for(settings) as services:
            found = await list_partitions(services.db)
        if not found:
            click.echo("no partitions: run `questline db upgrade` (migration 0013_partitions)")
            return
        click.echo(f"{'partition':<28} {'bound':<14} {'rows':>12} {'MB':>9}")
        for p in found:
            click.echo(f"{p.name:<28} {f'{p.remainder} mod {p.modulus}':<14} {p.rows:>12} {p.bytes / 1e6:>9.1f}")

    run(body)


@partitions_group.command("split")
@click.argument("table", type=click.Choice(["event_log", "ledger"]))
@click.option("--partition", "name", default=None, help="Only this partition (default: every one of TABLE).")
@click.option(
    "--archive/--drop",
    default=False,
    show_default=True,
    help="Keep each split partition detached in schema questline_archive instead of dropping it.",
)
def split_command(table: str, name: str | None, archive: bool) -> None:
    """Split partitions in two (twice the modulus), moving their rows; writes to TABLE wait meanwhile."""
    from engine.partitions import split

    settings = settings_from_env()

    async def body() -> None:
        async with services_for(settings) as services:
            created = await split(services.db, table, name=name, archive=archive, now=services.clock.now())
        click.echo(f"created {len(created)} partition(s): {', '.join(created)}")

    run(body)


def register(db_group: click.Group) -> None:
    """Add ``partitions`` to the `questline db` group."""
    db_group.add_command(partitions_group)

"""`questline tiers …`: list a brand's tiers, re-evaluate (downgrades, renewals, overrides, birthdays), simulate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
import msgspec
import yaml

from web.commands import run, services_for, settings_from_env, with_brand

if TYPE_CHECKING:
    from engine.tenants import Brand
    from web.deps import Services


def register(cli: click.Group) -> None:
    """Add this package's commands to the `questline` command group."""

    @cli.group()
    def tiers() -> None:
        """Tiers of a brand: definitions, re-evaluation and simulation."""

    @tiers.command("list")
    @click.option("--brand", "slug", required=True, help="Brand slug.")
    def list_tiers(slug: str) -> None:
        """List a brand's tiers, lowest first, with how many members hold each."""
        from tiers import repository

        async def body(services: Services, brand: Brand) -> None:
            async with services.db.read() as session:
                program = await repository.load_program(session, brand.id)
                counts = await repository.distribution(session, brand_id=brand.id)
            if program is None:
                click.echo("no tiers")
                return
            for tier in program.tiers:
                click.echo(
                    f"{tier.key:<20} from {tier.threshold:>10g}  x{tier.multiplier:<5g} {counts.get(tier.key, 0):>7} members"
                )

        with_brand(slug, body)

    @tiers.command("evaluate")
    @click.option("--brand", "slug", default=None, help="Brand slug (default: every brand).")
    def evaluate(slug: str | None) -> None:
        """Re-evaluate tiers now: downgrades and renewals at window ends, ended overrides, birthday bonuses."""
        from tiers import service

        if slug is not None:

            async def one(services: Services, brand: Brand) -> None:
                report = await service.evaluate(services.db, brand=brand, now=services.clock.now())
                click.echo(f"{brand.slug}: {json.dumps(msgspec.to_builtins(report))}")

            with_brand(slug, one)
            return
        settings = settings_from_env()

        async def every() -> None:
            async with services_for(settings) as services:
                reports = await service.evaluate_all(services.db, now=services.clock.now())
            for name, report in sorted(reports.items()):
                click.echo(f"{name}: {json.dumps(msgspec.to_builtins(report))}")

        run(every)

    @tiers.command("simulate")
    @click.option("--brand", "slug", required=True, help="Brand slug.")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    def simulate(slug: str, path: Path) -> None:
        """How many members a `tiers` section (YAML or JSON file) would move; nothing is changed."""
        from tiers import service
        from tiers.config import parse_section

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        proposed = parse_section(data.get("tiers", data) if isinstance(data, dict) else data, path="$.tiers")
        if proposed is None:
            raise click.ClickException("the file defines no tiers")

        async def body(services: Services, brand: Brand) -> None:
            report = await service.simulate_program(
                services.db, brand=brand, proposed=proposed, now=services.clock.now()
            )
            click.echo(json.dumps(report, indent=2, sort_keys=True))

        with_brand(slug, body)

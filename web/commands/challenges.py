"""`questline` CLI commands of the `challenges` package: apply and simulate a program document."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import msgspec

from web.commands import with_brand

if TYPE_CHECKING:
    from engine.tenants import Brand
    from web.deps import Services


def _read(path: Path) -> dict[str, Any]:
    from web.program import load_document

    content_type = "application/json" if path.suffix.lower() == ".json" else "application/yaml"
    return load_document(path.read_bytes(), content_type=content_type)


def register(cli: click.Group) -> None:
    """Add ``apply`` and ``simulate`` to the ``questline`` command group."""

    @cli.command("apply")
    @click.argument("document", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--brand", "slug", required=True, help="Brand slug.")
    @click.option("--dry-run", is_flag=True, help="Validate and print the changes; write nothing.")
    def apply_command(document: Path, slug: str, dry_run: bool) -> None:
        """Apply a program document (YAML or JSON): earning rules, campaigns, challenges, badges, boards."""
        from web.program import apply_program

        data = _read(document)

        async def body(services: Services, brand: Brand) -> None:
            result = await apply_program(
                services.db, brand=brand, document=data, now=services.clock.now(), dry_run=dry_run, source="cli"
            )
            for change in result.changes:
                click.echo(f"  {change}")
            for report in result.backfills:
                click.echo(
                    f"  backfilled {report.challenge} from {report.since.isoformat()}: {report.members} members, "
                    f"{report.completions} completions, {report.points} points"
                )
            if result.dry_run:
                verdict = f"{len(result.changes)} change(s) would be applied" if result.changed else "no changes"
                click.echo(f"dry run on version {result.version}: {verdict}; nothing written")
            elif result.changed:
                click.echo(f"applied as version {result.version}")
            else:
                click.echo(f"no changes (still version {result.version})")

        with_brand(slug, body)

    @cli.command("simulate")
    @click.argument("document", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--brand", "slug", required=True, help="Brand slug.")
    @click.option("--from", "since", default=None, help="Start: a date or date-time (brand's timezone unless offset).")
    @click.option("--to", "until", default=None, help="End, exclusive (default: now).")
    @click.option("--top", type=click.IntRange(1, 100), default=10, show_default=True, help="Top members to list.")
    @click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
    def simulate_command(
        document: Path, slug: str, since: str | None, until: str | None, top: int, as_json: bool
    ) -> None:
        """Replay the brand's stored events through a draft program and report what it would cost. Writes nothing."""
        from web.program import parse_instant, simulate_program

        data = _read(document)

        async def body(services: Services, brand: Brand) -> None:
            start = parse_instant(since, brand, field="--from")
            end = parse_instant(until, brand, field="--to") or services.clock.now()
            report = await simulate_program(services.db, brand=brand, document=data, since=start, until=end, top=top)
            if as_json:
                click.echo(msgspec.json.format(msgspec.json.encode(report)).decode())
                return
            click.echo(f"{report.events} events of {report.members} members")
            click.echo(
                f"points: {report.points.total} ({report.points.earning_rules} from earning rules, "
                f"{report.points.challenges} from challenges)"
            )
            for item in report.challenges:
                click.echo(
                    f"  {item.key:<24} {item.type:<9} {item.completions:>6} completions by {item.members:>5} members"
                    f"  {item.points:>8} points"
                )
            for badge, count in report.badges.items():
                click.echo(f"  badge {badge}: {count}")
            for rank, member in enumerate(report.top_members, 1):
                click.echo(f"  #{rank} {member.member}: {member.points} points, {member.completions} completions")

        with_brand(slug, body, migrate=False)

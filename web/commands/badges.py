"""`questline badges …`: list, export and apply a brand's badges; grant and revoke them with a reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml

from web.commands import with_brand

if TYPE_CHECKING:
    from engine.tenants import Brand
    from web.deps import Services


def register(cli: click.Group) -> None:
    """Add this package's commands to the `questline` command group."""

    @cli.group()
    def badges() -> None:
        """Badges of a brand: definitions, grants and revocations."""

    @badges.command("list")
    @click.option("--brand", "slug", required=True, help="Brand slug.")
    def list_badges(slug: str) -> None:
        """List a brand's badges with how many members hold each."""
        from badges import repository

        async def body(services: Services, brand: Brand) -> None:
            async with services.db.read() as session:
                defs = await repository.load_badges(session, brand.id)
                holders, members = await repository.holders(session, brand_id=brand.id)
            for badge in defs:
                kind = (
                    "levels " + "/".join(lv.key for lv in badge.levels)
                    if badge.levels
                    else ("repeatable" if badge.repeatable else "once")
                )
                flags = " ".join(f for f, on in (("hidden", badge.hidden), ("inactive", not badge.active)) if on)
                held = holders.get(badge.key, 0)
                share = f"{100.0 * held / members:.1f}%" if members else "-"
                click.echo(f"{badge.key:<24} {kind:<28} {held:>6} holders {share:>6}  {badge.name} {flags}".rstrip())

        with_brand(slug, body)

    @badges.command("export")
    @click.option("--brand", "slug", required=True, help="Brand slug.")
    @click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
    def export_badges(slug: str, fmt: str) -> None:
        """Print the brand's badges as a `badges` config section."""
        from badges.config import export_section

        async def body(services: Services, brand: Brand) -> None:
            async with services.db.read() as session:
                section = await export_section(session, brand_id=brand.id)
            document = {"badges": section}
            if fmt == "json":
                click.echo(json.dumps(document, indent=2, ensure_ascii=False))
            else:
                click.echo(yaml.safe_dump(document, allow_unicode=True, sort_keys=False).rstrip())

        with_brand(slug, body)

    @badges.command("apply")
    @click.option("--brand", "slug", required=True, help="Brand slug.")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    def apply_badges(slug: str, path: Path) -> None:
        """Validate a YAML/JSON file with a `badges` list and create or update those badges."""
        from badges.config import apply_section, parse_section

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        section = data.get("badges") if isinstance(data, dict) else data

        async def body(services: Services, brand: Brand) -> None:
            defs = parse_section(section, path="badges")  # inside `run`: a mistake prints its path, exit 1
            async with services.db.write() as session:
                changes = await apply_section(session, brand_id=brand.id, defs=defs, now=services.clock.now())
            click.echo("\n".join(changes) if changes else "no changes")

        with_brand(slug, body)

    @badges.command("grant")
    @click.option("--brand", "slug", required=True, help="Brand slug.")
    @click.option("--reason", required=True, help="Why (kept with the award).")
    @click.option("--level", default="", help="Level to grant (badges with levels; default: the next one).")
    @click.option("--ref", default="", help="Your reference; a repeatable badge is granted once per ref.")
    @click.argument("member")
    @click.argument("badge")
    def grant_badge(slug: str, reason: str, level: str, ref: str, member: str, badge: str) -> None:
        """Grant BADGE to MEMBER (external id) and print the public assertion URL."""
        from badges.openbadges import Urls
        from badges.service import grant
        from engine.members import get_member

        async def body(services: Services, brand: Brand) -> None:
            urls = Urls(services.settings.public_url)
            async with services.db.write() as session:
                found = await get_member(session, brand_id=brand.id, external_id=member)
                outcome = await grant(
                    session,
                    brand=brand,
                    member_id=found.id,
                    badge_key=badge,
                    reason=reason,
                    source="manual",
                    source_ref=ref,
                    now=services.clock.now(),
                    urls=urls,
                    level=level,
                )
            if outcome.award is None:
                click.echo(f"{member} already holds every level of {badge}")
                return
            state = "granted" if outcome.created else "reinstated" if outcome.reinstated else "already held"
            click.echo(f"{state}: {urls.assertion_v2(outcome.award.uid)}")

        with_brand(slug, body)

    @badges.command("revoke")
    @click.option("--brand", "slug", required=True, help="Brand slug.")
    @click.option("--reason", required=True, help="Why (published in the revoked assertion).")
    @click.option("--level", default="", help="Only this level.")
    @click.option("--award", "award_id", default="", help="Only this award id.")
    @click.argument("member")
    @click.argument("badge")
    def revoke_badge(slug: str, reason: str, level: str, award_id: str, member: str, badge: str) -> None:
        """Revoke MEMBER's live awards of BADGE; their hosted assertions then answer as revoked."""
        from badges.openbadges import Urls
        from badges.service import revoke
        from engine.members import get_member

        async def body(services: Services, brand: Brand) -> None:
            urls = Urls(services.settings.public_url)
            async with services.db.write() as session:
                found = await get_member(session, brand_id=brand.id, external_id=member)
                revoked = await revoke(
                    session,
                    brand=brand,
                    member_id=found.id,
                    badge_key=badge,
                    reason=reason,
                    now=services.clock.now(),
                    urls=urls,
                    level=level,
                    award=award_id,
                )
            for award in revoked:
                click.echo(
                    f"revoked {award.badge} {award.level or ''} {urls.assertion_v2(award.uid)}".replace("  ", " ")
                )

        with_brand(slug, body)

"""`questline` commands for the console and the portal: create an admin, print a member's portal link."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import click

from web.commands import with_brand

if TYPE_CHECKING:
    from engine.tenants import Brand
    from web.deps import Services


def register(cli: click.Group) -> None:
    """Add ``admin create`` and ``member-link`` to the `questline` command group."""
    cli.add_command(admin)
    cli.add_command(member_link)


@click.group()
def admin() -> None:
    """Brand admin users (console sign-in)."""


@admin.command("create")
@click.option("--brand", "slug", required=True, help="Brand slug.")
@click.option("--email", required=True, help="The admin's email (their sign-in name).")
@click.option("--name", default="", help="Display name.")
@click.password_option("--password", help="At least 10 characters (asked for when not given).")
def admin_create(slug: str, email: str, name: str, password: str) -> None:
    """Create a console admin for a brand (the password is stored as a scrypt hash)."""
    from engine.admins import create_admin

    async def body(services: Services, brand: Brand) -> None:
        created = await create_admin(
            services.db, brand_id=brand.id, email=email, password=password, name=name, now=services.clock.now()
        )
        click.echo(f"admin {created.email} can sign in at {services.settings.public_url.rstrip('/')}/console/login")

    with_brand(slug, body)


@click.command("member-link")
@click.option("--brand", "slug", required=True, help="Brand slug.")
@click.option("--member", "external_id", required=True, help="The member's external id.")
@click.option("--hours", type=click.IntRange(1, 720), default=24, show_default=True, help="How long the link works.")
def member_link(slug: str, external_id: str, hours: int) -> None:
    """Print a signed link to a member's portal (like POST /v1/members/{id}/portal-link)."""
    from engine.members import get_member
    from web.pages import tokens

    async def body(services: Services, brand: Brand) -> None:
        async with services.db.read() as session:
            member = await get_member(session, brand_id=brand.id, external_id=external_id)
        settings = services.settings
        token = tokens.sign(
            secret=settings.secret,
            purpose=tokens.Purpose.PORTAL_LINK,
            brand_id=brand.id,
            member=member.external_id,
            expires_at=services.clock.now() + timedelta(hours=hours),
        )
        click.echo(f"{settings.public_url.rstrip('/')}/portal/enter/{token}")

    with_brand(slug, body)

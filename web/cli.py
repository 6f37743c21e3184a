"""The ``questline`` command: serve, demo, brands and keys, schema upgrades, and the domains' commands."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any

import click

from engine.errors import QuestlineError
from engine.schema import upgrade
from engine.settings import refuse_unsafe
from engine.tenants import Brand, KeyKind
from web.commands import badges as badges_commands
from web.commands import challenges as challenges_commands
from web.commands import db as db_commands
from web.commands import doctor as doctor_commands
from web.commands import leaderboards as leaderboards_commands
from web.commands import pages as pages_commands
from web.commands import points as points_commands
from web.commands import run, services_for, settings_from_env, with_brand
from web.commands import tiers as tiers_commands

if TYPE_CHECKING:
    from web.deps import Services


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="questline")
def cli() -> None:
    """Questline: challenges, badges, points and live leaderboards for loyalty programs.

    Configuration comes from QUESTLINE_* environment variables (see README); by default a SQLite file
    ./questline.db and an in-process fake Redis.
    """


@cli.command()
@click.option("--host", default=None, help="Bind address (QUESTLINE_HOST).")
@click.option("--port", type=int, default=None, help="Port (QUESTLINE_PORT).")
@click.option("--workers", type=int, default=None, help="Worker processes (QUESTLINE_WORKERS; 1 on SQLite).")
@click.option("--demo/--no-demo", default=None, help="Seed the demo brand at start (QUESTLINE_DEMO).")
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
def serve(host: str | None, port: int | None, workers: int | None, demo: bool | None, reload: bool) -> None:
    """Run the HTTP server."""
    import uvicorn

    from web import serving

    overrides: dict[str, Any] = {
        k: v for k, v in {"host": host, "port": port, "workers": workers, "demo": demo}.items() if v is not None
    }
    settings = settings_from_env(**overrides)
    try:
        refuse_unsafe(settings)  # create_app checks again; here the operator gets one line, not a traceback
    except QuestlineError as exc:
        raise click.ClickException(exc.detail) from exc
    for name, value in overrides.items():
        os.environ[f"QUESTLINE_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    workers_count = 1 if settings.uses_sqlite or settings.uses_fake_redis else settings.workers
    if workers_count != settings.workers:
        click.echo("note: the embedded SQLite/fake Redis default runs one worker", err=True)
    from web.metrics import prepare_multiprocess_dir

    metrics_dir = prepare_multiprocess_dir(workers_count if not reload else 1)
    if metrics_dir:  # several workers: /metrics sums every worker's counters from this directory
        click.echo(f"metrics of the {workers_count} workers are collected in {metrics_dir}", err=True)
    options: dict[str, Any] = {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": workers_count if not reload else None,
        "reload": reload,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 5,  # live widget streams would otherwise hold shutdown for minutes
        "http": "web.serving:HttpProtocol",  # httptools, one socket write per response
    }
    try:
        if workers_count > 1 and not reload and serving.AVAILABLE:
            # each worker listens on its own socket, so the kernel spreads connections evenly (web/serving.py)
            serving.serve_reuse_port(uvicorn.Config("web.app:create_app", **options))
        else:
            uvicorn.run("web.app:create_app", **options)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@cli.command()
@click.option("--port", type=int, default=None, help="Port (default 8000).")
def demo(port: int | None) -> None:
    """Serve with the demo brand, members, rules and events (created on first start)."""
    ctx = click.get_current_context()
    ctx.invoke(serve, host=None, port=port, workers=None, demo=True, reload=False)


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="heads", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    """Apply the schema migrations (Alembic) to QUESTLINE_DATABASE_URL."""
    settings = settings_from_env()
    run(lambda: upgrade(settings.database_url, revision))
    click.echo(f"database at {settings.database_url.split('@')[-1]} is at {revision}")


@cli.group()
def brand() -> None:
    """Brands (tenants)."""


@brand.command("create")
@click.argument("name")
@click.option("--timezone", required=True, help="IANA timezone of the brand, e.g. Europe/Rome.")
@click.option("--slug", default=None, help="URL-safe id (default: from the name).")
def brand_create(name: str, timezone: str, slug: str | None) -> None:
    """Create a brand and print its secret and publishable keys (shown only once)."""
    from engine.tenants import create_brand

    settings = settings_from_env()

    async def body() -> None:
        async with services_for(settings) as services:
            created, keys = await create_brand(
                services.db, name=name, timezone=timezone, slug=slug, now=services.clock.now()
            )
        click.echo(f"brand {created.slug} ({created.name}, {created.timezone}) created")
        for key in keys:
            click.echo(f"  {key.kind.value:<12} {key.key}")
        click.echo("Store the keys now: they are kept hashed and cannot be shown again.")

    run(body)


@brand.command("list")
def brand_list() -> None:
    """List brands."""
    from engine.tenants import list_brands

    settings = settings_from_env()

    async def body() -> None:
        async with services_for(settings) as services, services.db.read() as session:
            brands = await list_brands(session)
        for item in brands:
            click.echo(f"{item.slug:<24} {item.timezone:<20} {item.name}")

    run(body)


@brand.command("event-window")
@click.argument("slug")
@click.option(
    "--max-age-days",
    type=click.IntRange(1, 36_500),
    required=True,
    help="How old an event the brand accepts (default QUESTLINE_EVENT_MAX_AGE_DAYS, 365); older ones answer 422.",
)
def brand_event_window(slug: str, max_age_days: int) -> None:
    """Set how old an event brand SLUG accepts (raise it to import history)."""
    from engine.events import MAX_AGE_SETTING
    from engine.orm import BrandRow

    async def change(services: Services, found: Brand) -> None:
        async with services.db.write() as session:
            row = await session.get(BrandRow, found.id)
            if row is not None:
                row.settings = {**(row.settings or {}), MAX_AGE_SETTING: max_age_days}
        click.echo(f"brand {found.slug} accepts events up to {max_age_days} days old")

    with_brand(slug, change)


@cli.group()
def key() -> None:
    """API keys of a brand."""


@key.command("list")
@click.option("--brand", "slug", required=True, help="Brand slug.")
@click.option("--prefix", default="", help="Only keys starting with this prefix.")
def key_list(slug: str, prefix: str) -> None:
    """List a brand's keys by prefix (the keys themselves are never stored)."""
    from engine.tenants import list_keys

    async def body(services: Services, found: Brand) -> None:
        async with services.db.read() as session:
            keys = await list_keys(session, found.id)
        for item in keys:
            if not item.prefix.startswith(prefix):
                continue
            state = f"revoked {item.revoked_at:%Y-%m-%d %H:%M}" if item.revoked_at else "live"
            click.echo(f"{item.prefix}…  {item.kind.value:<12} {state:<24} created {item.created_at:%Y-%m-%d %H:%M}")

    with_brand(slug, body)


@key.command("create")
@click.option("--brand", "slug", required=True, help="Brand slug.")
@click.option("--kind", type=click.Choice([k.value for k in KeyKind]), default="secret", show_default=True)
@click.option("--label", default="", help="A note to recognise the key by.")
def key_create(slug: str, kind: str, label: str) -> None:
    """Issue one more key (shown once)."""
    from engine.tenants import issue_key

    async def body(services: Services, found: Brand) -> None:
        issued = await issue_key(
            services.db, brand_id=found.id, kind=KeyKind(kind), now=services.clock.now(), label=label
        )
        click.echo(issued.key)

    with_brand(slug, body)


@key.command("rotate")
@click.option("--brand", "slug", required=True, help="Brand slug.")
@click.option("--kind", type=click.Choice([k.value for k in KeyKind]), default="secret", show_default=True)
def key_rotate(slug: str, kind: str) -> None:
    """Issue a new key and revoke the brand's other live keys of that kind."""
    from engine.tenants import rotate_key

    async def body(services: Services, found: Brand) -> None:
        issued = await rotate_key(services.db, brand_id=found.id, kind=KeyKind(kind), now=services.clock.now())
        click.echo(issued.key)
        click.echo("Other live keys of this kind are revoked (other workers notice within a few seconds).", err=True)

    with_brand(slug, body)


@key.command("revoke")
@click.option("--brand", "slug", required=True, help="Brand slug.")
@click.argument("prefix")
def key_revoke(slug: str, prefix: str) -> None:
    """Revoke the brand's live keys starting with PREFIX."""
    from engine.tenants import revoke_key

    async def body(services: Services, found: Brand) -> None:
        count = await revoke_key(services.db, brand_id=found.id, prefix=prefix, now=services.clock.now())
        click.echo(f"revoked {count} key(s)")

    with_brand(slug, body)


for _module in (
    challenges_commands,
    badges_commands,
    leaderboards_commands,
    pages_commands,
    db_commands,
    doctor_commands,
    points_commands,
    tiers_commands,
):
    _module.register(cli)


def main() -> None:
    """Entry point of the ``questline`` console script."""
    cli(prog_name="questline")


if __name__ == "__main__":
    main()

"""`questline doctor`: check configuration, secrets, database, Redis, schema, clock and outbox; say what to fix.

Each check answers ``ok``, ``warn`` (works, but not as production should) or ``FAIL`` with the fix; the
command exits 1 when any check fails. Nothing is changed: no migration runs, nothing is written.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

import click
import msgspec

from engine.errors import QuestlineError
from engine.settings import DEFAULT_SECRET, MIN_SECRET_BYTES, Settings, load_settings, unsafe_reasons
from web.commands import run
from web.commands.db import schema_report

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

MAX_CLOCK_SKEW = 2.0
"""Seconds between this machine's clock and the database's before the check fails (periods, expiry)."""
BACKLOG_WARN = 1000
OLDEST_WARN = timedelta(minutes=10)
TIMEOUT = 5.0

Status = Literal["ok", "warn", "FAIL"]


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One check's outcome."""

    check: str
    status: Status
    detail: str
    fix: str = ""


def check_settings(settings: Settings) -> list[Finding]:
    """Secrets strong enough (what ``questline serve`` refuses outside the embedded default), defaults flagged."""
    found = [
        Finding(
            check="demo" if reason.startswith("QUESTLINE_DEMO") else "secret",
            status="FAIL",
            detail=reason,
            fix="unset QUESTLINE_DEMO"
            if reason.startswith("QUESTLINE_DEMO")
            else "export QUESTLINE_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')",
        )
        for reason in unsafe_reasons(settings)
    ]
    if not found:
        weak = settings.secret == DEFAULT_SECRET or len(settings.secret.encode()) < MIN_SECRET_BYTES
        detail = "the development default (fine for the embedded set-up only)" if weak else "strong enough"
        found.append(Finding(check="secret", status="warn" if weak else "ok", detail=detail))
    if settings.metrics_token and len(settings.metrics_token) < 16:
        found.append(
            Finding(
                check="metrics token",
                status="warn",
                detail="QUESTLINE_METRICS_TOKEN is shorter than 16 characters",
                fix="use a long random token for the Prometheus scraper",
            )
        )
    if settings.uses_sqlite or settings.uses_fake_redis:
        found.append(
            Finding(
                check="backends",
                status="warn",
                detail="embedded SQLite / in-process Redis: one worker, for trying Questline out",
                fix="set QUESTLINE_DATABASE_URL (postgresql+asyncpg://…) and QUESTLINE_REDIS_URL (redis://…)",
            )
        )
    return found


async def _database_facts(connection: AsyncConnection, postgres: bool) -> tuple[str, datetime | None]:
    from sqlalchemy import text

    if postgres:
        version = str(await connection.scalar(text("SHOW server_version")))
        now = await connection.scalar(text("SELECT now()"))
        return f"PostgreSQL {version}", now
    return f"SQLite {await connection.scalar(text('SELECT sqlite_version()'))}", None


async def check_database(settings: Settings) -> list[Finding]:
    """Reachable, its version, and the clock skew between this machine and PostgreSQL."""
    from engine.db import create_engine

    engine = create_engine(settings.database_url)
    where = settings.database_url.split("@")[-1]
    try:
        async with asyncio.timeout(TIMEOUT), engine.connect() as connection:
            sent = time.time()
            version, db_now = await _database_facts(connection, engine.dialect.name == "postgresql")
            received = time.time()
    except Exception as exc:  # any failure to connect is what this check reports
        return [
            Finding(
                check="database",
                status="FAIL",
                detail=f"{where} is not reachable: {exc.__class__.__name__}: {str(exc)[:200]}",
                fix="check QUESTLINE_DATABASE_URL, that the server runs and the database exists",
            )
        ]
    finally:
        await engine.dispose()
    found = [Finding(check="database", status="ok", detail=f"{version} at {where}")]
    if db_now is not None:
        local = datetime.fromtimestamp((sent + received) / 2, UTC)
        skew = abs((db_now - local).total_seconds()) - (received - sent) / 2
        status: Status = "ok" if skew <= MAX_CLOCK_SKEW else "FAIL"
        found.append(
            Finding(
                check="clock",
                status=status,
                detail=f"{max(skew, 0.0):.2f} s between this machine and the database",
                fix="" if status == "ok" else "synchronise the clocks (NTP) of the app nodes and the database",
            )
        )
    return found


async def check_redis(settings: Settings) -> list[Finding]:
    """Reachable, and its version."""
    from web.wiring import create_redis

    if settings.uses_fake_redis:
        return [Finding(check="redis", status="ok", detail="in-process fake Redis (memory://)")]

    client = create_redis(settings)
    try:
        async with asyncio.timeout(TIMEOUT):
            info = await client.info("server")
    except Exception as exc:  # any failure to answer is what this check reports
        return [
            Finding(
                check="redis",
                status="FAIL",
                detail=f"{settings.redis_url.split('@')[-1]} is not reachable: {exc.__class__.__name__}",
                fix="check QUESTLINE_REDIS_URL and that Redis runs (boards are rebuilt from SQL once it is back)",
            )
        ]
    finally:
        await client.aclose()
    return [Finding(check="redis", status="ok", detail=f"Redis {info.get('redis_version', '?')}")]


async def check_schema(settings: Settings) -> list[Finding]:
    """The migrations applied match the code's heads, and the tables match the code."""
    report = await schema_report(settings.database_url, timeout=TIMEOUT)
    if report.ok:
        return [Finding(check="migrations", status="ok", detail=f"at {', '.join(report.current)}")]
    return [
        Finding(check="migrations", status="FAIL", detail=line, fix="questline db upgrade (after a backup)")
        for line in report.describe()
    ]


async def check_outbox(settings: Settings) -> list[Finding]:
    """How many webhook messages wait, and how old the oldest is (messages given up after every retry apart)."""
    from sqlalchemy import func, select

    from engine.db import Database, create_engine
    from engine.orm import OutboxRow
    from engine.outbox import GIVEN_UP_HORIZON

    db = Database(create_engine(settings.database_url))
    now = datetime.now(UTC)
    undelivered = OutboxRow.delivered_at.is_(None)
    try:
        async with asyncio.timeout(TIMEOUT), db.read() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(OutboxRow.created_at)).where(
                        undelivered, OutboxRow.next_attempt_at < now + GIVEN_UP_HORIZON
                    )
                )
            ).one()
            given_up = await session.scalar(
                select(func.count()).where(undelivered, OutboxRow.next_attempt_at >= now + GIVEN_UP_HORIZON)
            )
    finally:
        await db.dispose()
    age = now - oldest if oldest is not None else timedelta(0)
    detail = f"{count} undelivered webhook message(s), oldest {int(age.total_seconds())} s"
    if given_up:
        detail += f"; {given_up} given up after every retry (kept for the record, never sent again)"
    if count > BACKLOG_WARN or age > OLDEST_WARN:
        return [
            Finding(
                check="outbox",
                status="warn",
                detail=detail,
                fix="check the receivers' endpoints (last_error in the outbox table) and that the servers run",
            )
        ]
    return [Finding(check="outbox", status="ok", detail=detail)]


async def diagnose(settings: Settings) -> list[Finding]:
    """Every check, in order; the schema and the outbox only when the database answers."""
    found = check_settings(settings)
    database = await check_database(settings)
    found += database
    found += await check_redis(settings)
    if all(f.status != "FAIL" for f in database if f.check == "database"):
        schema = await check_schema(settings)
        found += schema
        if all(f.status == "ok" for f in schema):
            found += await check_outbox(settings)
    return found


def register(cli: click.Group) -> None:
    """Add ``doctor`` to the `questline` command group."""
    cli.add_command(doctor)


@click.command()
def doctor() -> None:
    """Check configuration, secrets, database, Redis, migrations, clock skew and the outbox; say what to fix."""
    try:
        settings = load_settings(os.environ)
    except QuestlineError as exc:
        click.echo(f"FAIL  settings       {exc.detail}")
        click.echo(f"      fix: correct {exc.field}")
        raise SystemExit(1) from exc
    click.echo("ok    settings       loaded from QUESTLINE_* variables")
    findings = run(lambda: diagnose(settings))
    for finding in findings:
        click.echo(f"{finding.status:<5} {finding.check:<14} {finding.detail}")
        if finding.fix and finding.status != "ok":
            click.echo(f"      fix: {finding.fix}")
    failed = sum(1 for f in findings if f.status == "FAIL")
    if failed:
        click.echo(f"{failed} check(s) failed")
        raise SystemExit(1)
    click.echo("all checks passed")

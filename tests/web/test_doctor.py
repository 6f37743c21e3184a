"""`questline db check` and `questline doctor` on a healthy and on broken set-ups (CliRunner)."""

import sqlite3
import uuid

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from engine.schema import alembic_config, upgrade_sync
from tests.conftest import PG_ADMIN_URL, REDIS_URL
from web.cli import cli

STRONG = "s" * 8 + uuid.uuid4().hex + uuid.uuid4().hex


def invoke(*args: str, **env: str):
    return CliRunner().invoke(cli, list(args), env={f"QUESTLINE_{k.upper()}": v for k, v in env.items()})


@pytest.fixture
def sqlite_at(tmp_path):
    def make(revision: str | None) -> str:
        url = f"sqlite+aiosqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}"
        if revision:
            upgrade_sync(url, revision)
        return url

    return make


def test_db_check_passes_on_a_migrated_database(pg_url):
    result = invoke("db", "check", database_url=pg_url)
    assert result.exit_code == 0, result.output
    assert "schema matches the code" in result.output


def test_db_check_fails_when_migrations_are_missing(sqlite_at):
    url = sqlite_at("0001_engine")
    result = invoke("db", "check", database_url=url)
    assert result.exit_code == 1
    heads = ScriptDirectory.from_config(alembic_config(url)).get_heads()
    assert f"migrations not applied: {', '.join(sorted(heads))}" in result.output
    assert "drift" not in result.output  # tables a pending migration adds are not drift
    assert "questline db upgrade" in result.output


def test_db_check_reports_drift_between_tables_and_code(sqlite_at):
    url = sqlite_at("heads")
    with sqlite3.connect(url.split("///", 1)[1]) as conn:
        conn.execute("ALTER TABLE brands ADD COLUMN legacy_flag TEXT")
        conn.execute("CREATE TABLE stray (id INTEGER PRIMARY KEY)")
    result = invoke("db", "check", database_url=url)
    assert result.exit_code == 1
    assert "drift: remove_column brands.legacy_flag" in result.output
    assert "drift: remove_table stray" in result.output


def test_doctor_passes_on_a_healthy_setup(pg_url):
    result = invoke("doctor", database_url=pg_url, redis_url=REDIS_URL, secret=STRONG)
    assert result.exit_code == 0, result.output
    for check in ("secret", "database", "clock", "redis", "migrations", "outbox"):
        assert any(line.split()[:2] in (["ok", check], ["warn", check]) for line in result.output.splitlines()), check
    assert "FAIL" not in result.output
    assert "all checks passed" in result.output


def test_doctor_says_what_to_fix_on_a_broken_setup():
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    result = invoke(
        "doctor",
        database_url=f"{base}/questline_missing_{uuid.uuid4().hex[:8]}",
        redis_url="redis://127.0.0.1:1/0",
        secret="short",
    )
    assert result.exit_code == 1
    failed = {line.split()[1] for line in result.output.splitlines() if line.startswith("FAIL")}
    assert failed == {"secret", "database", "redis"}
    assert "fix: export QUESTLINE_SECRET" in result.output
    assert "3 check(s) failed" in result.output


def test_doctor_flags_an_unmigrated_database_and_bad_settings(sqlite_at):
    result = invoke("doctor", database_url=sqlite_at(None), secret=STRONG)
    assert result.exit_code == 1
    assert "FAIL  migrations" in result.output and "no schema yet" in result.output
    bad = invoke("doctor", port="not-a-port")
    assert bad.exit_code == 1 and "FAIL  settings" in bad.output


def test_db_check_knows_every_package_with_tables():
    """`db check` and the migrations' environment compare against every package that owns tables (a package
    missing from the list would make its tables look like drift)."""
    from pathlib import Path

    from engine.schema import TABLE_MODULES

    root = Path(__file__).resolve().parents[2]
    owners = {f"{path.parent.name}.orm" for path in root.glob("*/orm.py") if (path.parent / "__init__.py").exists()}
    assert owners <= set(TABLE_MODULES)  # plus modules such as engine.records that hold tables too
    assert "TABLE_MODULES" in (root / "migrations" / "env.py").read_text()


def test_doctor_counts_given_up_messages_apart_from_the_backlog(sqlite_at):
    """A message given up after every retry stays undelivered for the record: it is no backlog to warn about."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from engine.db import create_engine
    from engine.orm import BrandRow, OutboxRow
    from engine.outbox import GAVE_UP_DELAY
    from engine.topics import outbox_row

    url = sqlite_at("heads")
    now = datetime.now(UTC)

    async def write(*, age: timedelta, given_up: bool) -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                brand_id = await conn.scalar(
                    insert(BrandRow).returning(BrandRow.id),
                    [
                        {
                            "slug": uuid.uuid4().hex[:12],
                            "name": "B",
                            "timezone": "UTC",
                            "settings": {},
                            "created_at": now,
                        }
                    ],
                )
                row = outbox_row(brand_id=brand_id, topic="test.topic", data={}, now=now - age)
                if given_up:
                    row |= {"attempts": 10, "next_attempt_at": now - age + GAVE_UP_DELAY, "last_error": "gave up: 500"}
                await conn.execute(insert(OutboxRow), [row])
        finally:
            await engine.dispose()

    asyncio.run(write(age=timedelta(days=4), given_up=True))
    result = invoke("doctor", database_url=url, secret=STRONG)
    line = next(line for line in result.output.splitlines() if line.split()[1:2] == ["outbox"])
    assert line.startswith("ok") and "0 undelivered" in line and "1 given up" in line, result.output
    asyncio.run(write(age=timedelta(minutes=20), given_up=False))
    result = invoke("doctor", database_url=url, secret=STRONG)
    line = next(line for line in result.output.splitlines() if line.split()[1:2] == ["outbox"])
    assert line.startswith("warn") and "1 undelivered" in line and "oldest 120" in line, result.output

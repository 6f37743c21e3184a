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

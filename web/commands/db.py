"""`questline db check`: does the database's schema match this code (revisions and tables)?"""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Any, cast

import click
import msgspec

from engine.schema import TABLE_MODULES
from web.commands import run, settings_from_env

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection


class SchemaReport(msgspec.Struct, frozen=True, kw_only=True):
    """Where the database's schema stands against this code's migrations and tables."""

    current: tuple[str, ...]
    """The revisions the database is at (``alembic_version``)."""
    heads: tuple[str, ...]
    """The revisions this code's migrations end in."""
    drift: tuple[str, ...] = ()
    """Differences autogenerate finds between the tables and the code's metadata (one line each)."""

    @property
    def missing(self) -> tuple[str, ...]:
        """Heads the database has not reached."""
        return tuple(sorted(set(self.heads) - set(self.current)))

    @property
    def unknown(self) -> tuple[str, ...]:
        """Revisions of the database this code does not know (a newer release ran its migrations)."""
        return tuple(sorted(set(self.current) - set(self.heads)))

    @property
    def ok(self) -> bool:
        """Whether code and schema match."""
        return not self.missing and not self.unknown and not self.drift

    def describe(self) -> list[str]:
        """What is wrong, in lines an operator can act on (empty when all is well)."""
        lines: list[str] = []
        if not self.current:
            lines.append("the database has no schema yet: run `questline db upgrade`")
        elif self.missing:
            lines.append(f"migrations not applied: {', '.join(self.missing)}: run `questline db upgrade`")
        if self.unknown:
            lines.append(f"the database is at revisions this code does not know: {', '.join(self.unknown)}")
        lines.extend(f"drift: {item}" for item in self.drift)
        return lines


def _describe_diff(diff: Any) -> str:
    """One line for one autogenerate difference, e.g. ``remove_column brands.extra``."""
    if isinstance(diff, list):  # modifications of one column come grouped
        return "; ".join(_describe_diff(d) for d in diff)
    kind = str(diff[0])
    if kind in ("add_column", "remove_column"):
        return f"{kind} {diff[2]}.{diff[3].name}"
    if kind.startswith("modify_"):
        return f"{kind} {diff[2]}.{diff[3]}"
    target = diff[1]
    table = getattr(getattr(target, "table", None), "name", None)
    return f"{kind} {table + '.' if table else ''}{getattr(target, 'name', target)}"


def _partition_filter(connection: Connection) -> Callable[..., bool]:
    """Leave out what PostgreSQL's partitioned form of ``event_log`` and ``ledger`` adds (``0013_partitions``).

    The partitions themselves are tables of their own; the foreign keys onto ledger entries and
    ``uq_ledger_lot_kind`` name the brand too (a key onto a partitioned table must contain its partition key).
    """
    from sqlalchemy import text

    from engine.partitions import PARTITION_SHAPED_INDEXES

    if connection.dialect.name != "postgresql":
        return lambda *_args: True
    rows = connection.execute(
        text("SELECT relname, relkind = 'p' FROM pg_class WHERE relispartition OR relkind = 'p'")
    ).all()
    children = {name for name, parent in rows if not parent}
    parents = {name for name, parent in rows if parent}

    def include(item: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any) -> bool:
        if type_ == "table":
            return name not in children
        if type_ == "foreign_key_constraint":
            return str(item.elements[0].target_fullname).split(".")[0] not in parents | children
        if type_ == "index":
            return not (name in PARTITION_SHAPED_INDEXES and item.table.name in parents)
        return True

    return include


def _inspect(connection: Connection, heads: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The database's revisions, and the drift once it is at ``heads`` (before that, drift is expected)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from engine.db import Base

    for module in TABLE_MODULES:
        importlib.import_module(module)
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": _partition_filter(connection)}
    )
    current = tuple(sorted(context.get_current_heads()))
    drift = tuple(_describe_diff(d) for d in compare_metadata(context, Base.metadata)) if current == heads else ()
    return current, drift


async def schema_report(database_url: str, *, timeout: float = 10.0) -> SchemaReport:
    """Compare the database at ``database_url`` with this code's migration heads and table metadata."""
    from alembic.script import ScriptDirectory

    from engine.db import create_engine
    from engine.schema import alembic_config

    heads = tuple(sorted(ScriptDirectory.from_config(alembic_config(database_url)).get_heads()))
    engine = create_engine(database_url)
    try:
        async with asyncio.timeout(timeout), engine.connect() as connection:
            current, drift = await connection.run_sync(_inspect, heads)
    finally:
        await engine.dispose()
    return SchemaReport(current=current, heads=heads, drift=drift)


def register(cli: click.Group) -> None:
    """Add ``check`` to the `questline db` group."""
    from web.commands import partitions

    group = cast("click.Group", cli.commands["db"])
    group.add_command(check_command)
    partitions.register(group)


@click.command("check")
def check_command() -> None:
    """Report whether the schema matches this code (revisions and tables); exit 1 when it does not."""
    settings = settings_from_env()
    report = run(lambda: schema_report(settings.database_url))
    click.echo(f"database revisions: {', '.join(report.current) or '(none)'}")
    click.echo(f"code heads:         {', '.join(report.heads)}")
    if report.ok:
        click.echo("schema matches the code")
        return
    for line in report.describe():
        click.echo(line, err=True)
    raise SystemExit(1)

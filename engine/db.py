"""Database plumbing: the declarative base, portable column types, engine and session factories.

No module-level engine or session exists: :func:`create_engine` is called by the composition root.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import ARRAY, JSON, BigInteger, DateTime, Integer, MetaData, any_, bindparam, event, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Iterator, Sequence

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: 64-bit ids; SQLite needs plain INTEGER for its rowid autoincrement.
BigId = BigInteger().with_variant(Integer(), "sqlite")
#: JSONB on PostgreSQL, JSON text elsewhere; (de)serialised by msgspec (see :func:`create_engine`).
Json = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that always comes back as aware UTC, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Refuse naive values; store UTC (naive UTC on SQLite, which has no timezone type)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Return aware UTC whatever the backend gave back."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every Questline table; constraint names follow one convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _json_serializer(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 10,
    connect_timeout: float | None = None,
    pre_ping: bool = False,
    application_name: str = "questline",
    generic_plans: bool = False,
) -> AsyncEngine:
    """Build the async engine for ``url`` (``postgresql+asyncpg://…`` or ``sqlite+aiosqlite:///…``).

    On PostgreSQL ``connect_timeout`` bounds opening a connection, ``pre_ping`` checks a pooled one with a
    round trip before use (a server restart then costs no failed request), and ``application_name`` names
    the connections in ``pg_stat_activity``. ``generic_plans`` makes the connections plan each prepared
    statement once, for any parameters (``plan_cache_mode = force_generic_plan``), and never by a
    sequential scan where an index serves (``enable_seqscan = off``): the pool of the pipeline's units of
    work (:meth:`Database.unit`), see there.
    """
    options: dict[str, Any] = {
        "echo": echo,
        # An error names its statement but not its values: they are members' data, and a batch's run to
        # hundreds of kilobytes per logged error.
        "hide_parameters": True,
        "json_serializer": _json_serializer,
        "json_deserializer": msgspec.json.decode,
    }
    if url.startswith("sqlite"):
        options["connect_args"] = {"timeout": 30}
    else:
        options["pool_size"] = pool_size
        options["max_overflow"] = pool_size
        options["pool_recycle"] = 1800
        options["pool_pre_ping"] = pre_ping
        server_settings = {"application_name": application_name}
        if generic_plans:
            server_settings["plan_cache_mode"] = "force_generic_plan"
            server_settings["enable_seqscan"] = "off"
        connect_args: dict[str, Any] = {"server_settings": server_settings}
        if connect_timeout is not None:
            connect_args["timeout"] = connect_timeout
        options["connect_args"] = connect_args
    engine = create_async_engine(url, **options)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


# --- dialect differences: the one place that knows PostgreSQL from SQLite ------------------------------

#: Rows or values per statement where a list is spelled out (SQLite's bind-parameter limit, IN lists).
CHUNK = 500


def on_postgres(session: AsyncSession) -> bool:
    """Whether ``session`` talks to PostgreSQL (for code that has a session but not its :class:`Database`)."""
    return session.get_bind().dialect.name == "postgresql"


def insert_for(session: AsyncSession) -> Any:
    """The dialect's ``insert`` construct (both offer ``on_conflict_do_nothing`` / ``_do_update``)."""
    return pg_insert if on_postgres(session) else sqlite_insert


def one_of(session: AsyncSession, column: Any, values: Sequence[Any], item: Any) -> Any:
    """``column IN values``; on PostgreSQL ``= ANY(array)``, one parameter whose statement text and plan are reused.

    On SQLite the list is spelled out: pass at most :data:`CHUNK` values (see :func:`chunks`).
    """
    if on_postgres(session):
        return column == any_(bindparam(None, value=list(values), type_=ARRAY(item)))
    return column.in_(list(values))


class PerDialect:
    """A statement built once in each dialect's form (:func:`where_in_lists`); :meth:`of` picks one."""

    __slots__ = ("other", "postgres")

    def __init__(self, postgres: Any, other: Any) -> None:
        self.postgres = postgres
        self.other = other

    def of(self, session: AsyncSession) -> Any:
        """The form for ``session``'s database."""
        return self.postgres if on_postgres(session) else self.other


def where_in_lists(statement: Any, *lists: tuple[Any, str, Any]) -> PerDialect:
    """``statement`` with each ``(column, name, item type)``: the column in the list bound to ``name``, built once.

    On PostgreSQL ``column = ANY(:name)``: one array parameter, one statement text and plan whatever the
    list's length. Elsewhere ``column IN (:name)``, expanded when executed: pass at most :data:`CHUNK`
    values (:func:`batches`). For statements the hot path runs per unit of work, where building one cost
    more than running it.
    """
    postgres, other = statement, statement
    for column, name, item in lists:
        postgres = postgres.where(column == any_(bindparam(name, type_=ARRAY(item))))
        other = other.where(column.in_(bindparam(name, expanding=True)))
    return PerDialect(postgres, other)


def chunks(values: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """``values`` in lists of at most ``size``."""
    items = list(values)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batches(session: AsyncSession, values: Iterable[Any]) -> Iterator[list[Any]]:
    """``values`` in the lists :func:`one_of` takes: one on PostgreSQL (one round trip), of :data:`CHUNK` on SQLite."""
    if not on_postgres(session):
        yield from chunks(values)
        return
    items = list(values)
    if items:
        yield items


def greatest(session: AsyncSession, a: Any, b: Any) -> Any:
    """SQL ``greatest(a, b)`` (SQLite's two-argument ``max``)."""
    return func.greatest(a, b) if on_postgres(session) else func.max(a, b)


def least(session: AsyncSession, a: Any, b: Any) -> Any:
    """SQL ``least(a, b)`` (SQLite's two-argument ``min``)."""
    return func.least(a, b) if on_postgres(session) else func.min(a, b)


class Database:
    """An engine, its session factory, and the write gate SQLite needs.

    SQLite allows one writer at a time; the gate serialises write units of work inside this process so
    they queue instead of failing with "database is locked". On PostgreSQL the gate is a no-op and row
    locks do the work.
    """

    def __init__(
        self, engine: AsyncEngine, *, replica: AsyncEngine | None = None, units: AsyncEngine | None = None
    ) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self.units_engine = units or engine
        """Where the pipeline's units of work run (:meth:`unit`): ``engine`` unless a pool of their own is given."""
        self._unit_sessions = (
            async_sessionmaker(units, expire_on_commit=False, autoflush=False) if units is not None else self.sessions
        )
        self.dialect = engine.dialect.name
        self._gate = asyncio.Lock() if self.dialect == "sqlite" else None
        self.replica_engine = replica
        self._replica_sessions = (
            async_sessionmaker(replica, expire_on_commit=False, autoflush=False) if replica is not None else None
        )
        self.replica_reads = 0
        """Reads the replica answered; ``replica_fallbacks``: reads it could not, served by the primary."""
        self.replica_fallbacks = 0

    @property
    def is_postgres(self) -> bool:
        """Whether the database is PostgreSQL."""
        return self.dialect == "postgresql"

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """Every engine of the primary, each once (the units' pool when it has one of its own)."""
        return (self.engine,) if self.units_engine is self.engine else (self.engine, self.units_engine)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction that commits on success and rolls back on error."""
        async with self._transaction(self.sessions) as session:
            yield session

    @contextlib.asynccontextmanager
    async def unit(self) -> AsyncIterator[AsyncSession]:
        """As :meth:`write`, for the pipeline's units of work: on their own pool when one was given.

        Every statement of a unit is a probe by key (an event id, a member, a cap's day) whose best plan
        does not depend on the brand. The composition root gives units a pool whose connections plan
        each statement once, generically (``create_engine(generic_plans=True)``). With custom plans
        PostgreSQL planned these statements at every execution (costing all 8 partitions of a table), and
        with statistics taken before a brand had rows it read all of the brand's rows through an index on
        ``brand_id`` alone instead of probing the key (``docs/operations.md``). A generic plan is kept for
        the connection's life, so one made while a table was small must not keep a sequential scan as the
        table grows: the pool's connections plan with ``enable_seqscan = off`` (measured: a 1000-event
        batch's duplicate check took 366 ms, a sequential scan of 2,200 rows per event id, planned when the
        partition was small).
        Console and report queries keep the main pool and custom plans.
        """
        async with self._transaction(self._unit_sessions) as session:
            yield session

    @contextlib.asynccontextmanager
    async def _transaction(self, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
        async with contextlib.AsyncExitStack() as stack:
            if self._gate is not None:
                await stack.enter_async_context(self._gate)
            session = await stack.enter_async_context(sessions())
            await stack.enter_async_context(session.begin())
            yield session

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (no transaction is committed)."""
        async with self.sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def replica(self) -> AsyncIterator[AsyncSession]:
        """A read session on the read replica when one is configured and answers, else as :meth:`read`.

        For reads that may lag the primary by the replica's delay (console statistics, data exports); a read
        that must see what was just written (a member's own balance after a redemption) uses :meth:`read`.
        """
        if self._replica_sessions is None:
            async with self.read() as session:
                yield session
            return
        session = self._replica_sessions()
        try:
            await session.connection()
        except (OSError, TimeoutError, DBAPIError) as exc:
            await session.close()
            self.replica_fallbacks += 1
            log.warning("the read replica does not answer (%s); the primary serves this read", type(exc).__name__)
            async with self.read() as primary:
                yield primary
            return
        self.replica_reads += 1
        try:
            yield session
        finally:
            await session.close()

    async def dispose(self) -> None:
        """Close every pooled connection (the replica's too)."""
        await self.engine.dispose()
        if self.units_engine is not self.engine:
            await self.units_engine.dispose()
        if self.replica_engine is not None:
            await self.replica_engine.dispose()

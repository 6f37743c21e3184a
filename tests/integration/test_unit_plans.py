"""The plans of a unit of work's probes on PostgreSQL, with statistics from before a brand had rows.

A brand's first events are written while the planner's statistics still say it has none (autovacuum
analyzes a partition after a tenth of it changed). With custom plans PostgreSQL then read all of the
brand's rows through an index on ``brand_id`` alone for the duplicate check, the caps and the member lock
(measured in the bench: 1.4–1.8 ms per call at a few thousand rows, growing with the brand). The units'
pool plans generically (``Database.unit``), so each probe uses its key whatever the statistics say.

A generic plan can still filter a list against every row of the brand: the challenge states' read and the
earlier events of a ``first`` challenge and the tiers' current rows and day counters did, until they became
one lateral probe per member (as the caps' read). The states' and earlier events' list forms fail here;
the tiers' showed the same plan in ``auto_explain`` (and a tier probe with the brand inside failed). The
badges' counters and awards became such probes too (their IN lists were a new statement for every number
of members); the awards' probe is checked once the statistics know the table has rows (``badges.repository``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from badges.repository import _COUNTS, _HOLDINGS
from challenges.states import _STATES
from engine.clock import FrozenClock
from engine.db import create_engine
from engine.eventlog import _EARLIER, _KNOWN
from engine.member_locks import _FACTS, _LOCK_OR_CREATE, _LOCK_POSTGRES
from engine.points import _EARNED
from engine.schema import upgrade_sync
from engine.tenants import create_brand
from leaderboards.people_repo import _INFOS
from tests.conftest import PG_ADMIN_URL, _pg_admin, _unavailable
from tiers.repository import _CURRENT, _DAY_COUNTERS

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def stale_pg() -> Any:
    name = f"ql_plan_{uuid.uuid4().hex[:8]}"
    try:
        _pg_admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    upgrade_sync(url)
    yield url
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_SEED = [
    "INSERT INTO members (brand_id, external_id, display_name, locale, attributes, created_at, updated_at)"
    " SELECT :brand, 'm' || n, '', '', '{}', now(), now() FROM generate_series(1, :count) n",
    "INSERT INTO event_log (brand_id, event_key, member_id, type, occurred_at, received_at, properties, result)"
    " SELECT :brand, 'e' || n, m.id, 'visit', now(), now(), '{}', '[]'"
    " FROM generate_series(1, :count) n JOIN members m ON m.brand_id = :brand AND m.external_id = 'm' || n",
    "INSERT INTO ledger (brand_id, member_id, event_key, points, source, key, reason, occurred_at, local_day,"
    " created_at, kind) SELECT :brand, m.id, 'e' || n, 5, 'rule', 'visit', '', now(), current_date, now(), 'earn'"
    " FROM generate_series(1, :count) n JOIN members m ON m.brand_id = :brand AND m.external_id = 'm' || n",
]
_SEED_NEW_TABLES = [
    "INSERT INTO challenge_member_states (brand_id, member_id, state, updated_at)"
    " SELECT :brand, m.id, '{}', now() FROM members m WHERE m.brand_id = :brand",
    "INSERT INTO member_tiers (member_id, brand_id, tier, since, override_reason, source, version)"
    " SELECT m.id, :brand, 'bronze', now(), '', 'qualified', 1 FROM members m WHERE m.brand_id = :brand",
    "INSERT INTO tier_counters (member_id, metric, day, brand_id, value)"
    " SELECT m.id, 'points', current_date, :brand, 5 FROM members m WHERE m.brand_id = :brand",
    "INSERT INTO badge_counters (brand_id, member_id, badge_key, count, updated_at)"
    " SELECT :brand, m.id, 'regular', 1, now() FROM members m WHERE m.brand_id = :brand",
    "INSERT INTO badge_awards (uid, brand_id, member_id, badge_key, level, instance, source, source_ref, reason,"
    " points, awarded_at, revocation_reason, recipient_type, recipient_hash, salt)"
    " SELECT md5(m.id::text), :brand, m.id, 'regular', '', '', 'rule', '', '', 0, now(), '', 'id', 'h', 's'"
    " FROM members m WHERE m.brand_id = :brand",
]
"""A new program's tables (challenge states, tiers): its first rows are written while the statistics say they are empty."""
_HISTORY = (
    "INSERT INTO ledger (brand_id, member_id, event_key, points, source, key, reason, occurred_at, local_day,"
    " created_at, kind) SELECT :brand, m.id, NULL, 5, 'rule', 'visit', '', now(), current_date - d, now(), 'earn'"
    " FROM members m CROSS JOIN generate_series(1, 10) d WHERE m.brand_id = :brand"
)
"""Ten earlier days of earnings for each of the young brand's members."""


def _positional(statement: Any) -> tuple[str, list[str]]:
    """The statement as asyncpg receives it ($1, $2, …) and its parameter names in that order."""
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect())
    return str(compiled), list(compiled.positiontup)


async def _plan(engine: Any, statement: Any, values: dict[str, Any]) -> str:
    """The plan a connection of ``engine`` runs the prepared ``statement`` with (``EXPLAIN EXECUTE``)."""
    sql, names = _positional(statement)
    literals = statement.compile(dialect=postgresql.asyncpg.dialect()).params  # values built into the statement
    return await _plan_sql(engine, sql, [values[name] if name in values else literals[name] for name in names])


async def _plan_sql(engine: Any, sql: str, args: list[Any]) -> str:
    """The plan of ``sql`` (``$1``, ``$2``… parameters, as the driver runs it) with ``args``."""
    async with engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        await raw.execute(f"PREPARE probe AS {sql}")
        rows = await raw.fetch(f"EXPLAIN (COSTS OFF) EXECUTE probe({', '.join(map(_literal, args))})")
        await raw.execute("DEALLOCATE probe")
    return "\n".join(row[0] for row in rows)


async def test_the_units_probes_use_their_keys_while_statistics_predate_the_brand(stale_pg):
    main = create_engine(stale_pg)
    units = create_engine(stale_pg, generic_plans=True)
    clock = FrozenClock(NOW)
    try:
        from engine.db import Database

        db = Database(main, units=units)
        others = [(await create_brand(db, name=f"o{i}", timezone="UTC", now=clock.now()))[0] for i in range(12)]
        young, _ = await create_brand(db, name="young", timezone="UTC", now=clock.now())
        async with main.begin() as connection:
            for brand in others:
                for sql in _SEED:
                    await connection.execute(text(sql), {"brand": brand.id, "count": 300})
        async with main.connect() as connection:
            await (await connection.execution_options(isolation_level="AUTOCOMMIT")).execute(text("ANALYZE"))
        async with main.begin() as connection:  # the young brand's rows arrive after the statistics
            for sql in [*_SEED, *_SEED_NEW_TABLES]:
                await connection.execute(text(sql), {"brand": young.id, "count": 3000})
            members = [row[0] for row in await connection.execute(
                text("SELECT id FROM members WHERE brand_id = :b ORDER BY id LIMIT 7"), {"b": young.id}
            )]  # fmt: skip

        async with units.connect() as connection:
            mode = (await connection.execute(text("SHOW plan_cache_mode"))).scalar()
            scans = (await connection.execute(text("SHOW enable_seqscan"))).scalar()
        assert (mode, scans) == ("force_generic_plan", "off")
        async with main.connect() as connection:
            assert (await connection.execute(text("SHOW plan_cache_mode"))).scalar() == "auto"
            assert (await connection.execute(text("SHOW enable_seqscan"))).scalar() == "on"

        keys = [f"e{n}" for n in range(1, 8)]
        known = await _plan(units, _KNOWN, {"brand": young.id, "keys": keys})
        assert "event_key" in _index_conditions(known), known
        slots = [members, ["visit"] * len(members), [NOW.date()] * len(members), young.id]
        caps = await _plan_sql(units, _EARNED, slots)  # run by the driver
        assert "member_id" in _index_conditions(caps), caps
        assert "member_id" in _index_conditions(caps), caps
        lock = await _plan_sql(units, _LOCK_POSTGRES, [young.id, ["m1", "m2", "m3"]])  # run by the driver
        assert "external_id" in _index_conditions(lock), lock
        # The lock that also creates: the existing members by their key, and the new ones inserted only
        # after every existing one is locked (a hashed subplan reads all of them before the first insert).
        lock_or_create = await _plan_sql(units, _LOCK_OR_CREATE, [young.id, ["m1", "m2", "new-1"], NOW])
        assert "external_id" in _index_conditions(lock_or_create), lock_or_create
        assert "hashed SubPlan" in lock_or_create, lock_or_create
        # the challenge states, the earlier events of a "first" challenge, the board directory's members and
        # the segments' facts: each probe reads its members' rows by member, not every row of the brand
        states = await _plan(units, _STATES.postgres, {"brand_id": young.id, "member_ids": members})
        assert "member_id" in _index_conditions(states), states
        earlier = await _plan(
            units,
            _EARLIER.postgres,
            {"brand_id": young.id, "member_ids": members, "event_type": "visit", "before": NOW},
        )
        assert "member_id" in _index_conditions(earlier), earlier
        infos = await _plan(units, _INFOS.postgres, {"brand_id": young.id, "member_ids": members})
        assert "(id = " in _index_conditions(infos), infos
        facts = await _plan(units, _FACTS.postgres, {"brand_id": young.id, "ids": members})
        assert "(id = " in _index_conditions(facts), facts
        tiers = await _plan(units, _CURRENT, {"brand_id": young.id, "member_ids": members})
        assert "member_id" in _index_conditions(tiers), tiers
        counters = await _plan(
            units,
            _DAY_COUNTERS,
            {"brand_id": young.id, "member_ids": members, "metric": "points", "first": NOW.date()},
        )
        assert "member_id" in _index_conditions(counters), counters
        badge_values = {"brand_id": young.id, "member_ids": members, "keys": ["regular"]}
        counts = await _plan(units, _COUNTS, badge_values)
        assert "member_id" in _index_conditions(counts), counts
        # The awards' probe needs statistics that know the table has rows: while they say it is empty, the
        # narrower (brand_id, badge_key) index looks cheaper than the unique key (badges.repository).
        async with main.connect() as connection:
            await (await connection.execution_options(isolation_level="AUTOCOMMIT")).execute(
                text("ANALYZE badge_awards")
            )
        holdings = await _plan(units, _HOLDINGS, badge_values)
        assert "member_id" in _index_conditions(holdings), holdings
        # Once statistics know that members have a history (ten earlier days each here), each caps probe is a
        # look-up by (member, rule key, day): it reads the rows it sums, not the member's whole ledger.
        async with main.begin() as connection:
            await connection.execute(text(_HISTORY), {"brand": young.id})
        async with main.connect() as connection:
            await (await connection.execution_options(isolation_level="AUTOCOMMIT")).execute(text("ANALYZE ledger"))
        caps = await _plan_sql(units, _EARNED, slots)
        assert "local_day = " in _index_conditions(caps), caps
    finally:
        await main.dispose()
        await units.dispose()


def _literal(value: Any) -> str:
    """A test value as SQL (EXECUTE takes no bound parameters): integers, times, dates, plain text and lists of them."""
    if isinstance(value, list):
        return f"ARRAY[{', '.join(map(_literal, value))}]"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"TIMESTAMPTZ '{value.isoformat()}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    assert "'" not in str(value)
    return f"'{value}'"


def _index_conditions(plan: str) -> str:
    """The plan's index conditions only (a key in a ``Filter:`` line means the index was read by brand)."""
    return "\n".join(line for line in plan.splitlines() if "Index Cond" in line)

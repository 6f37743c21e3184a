"""A baseline of other brands' rows in the scratch database, as a production database has, before a bench starts.

Why: PostgreSQL caches the plan of each foreign-key check per connection (``SELECT 1 FROM members WHERE id
= $1 FOR KEY SHARE``). A connection that makes its first checks while ``members`` is nearly empty keeps a
sequential-scan plan for the connection's life, and the server's pooled connections live for the whole
bench: measured, each check then cost about 90 µs against 4 µs with the index (2–3 checks per event;
PostgreSQL's CPU per event in 1000-event batches went from 0.22 to 0.07 ms with this baseline). Autovacuum's analyze would replan them on a real database, but
its first round comes after a minute, when a scenario is over. Empty partitions of the event log and the
ledger (one per hash of the brand id), which the duplicate check and the caps read, could mislead the
server's cached statement plans the same way, so every partition gets rows too.

So, before the server starts, this adds a few brands with 2,500 members and balances each, and a few
ledger lots and logged events, until every partition of ``event_log`` and ``ledger`` holds rows, and
``ANALYZE``s. The partitions get few rows on purpose: 5,000 per brand made the single-event scenario about
10% slower (its points step, which holds the caps read, took longer), which measured the planner's
statistics of a brand the scenario had just created, not the server. The rows belong to
brands no scenario uses; the raw limits run on the same database.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

MEMBERS_PER_BRAND = 2_500
EVENTS_PER_BRAND = 200


async def _partitions_without_rows(conn: asyncpg.Connection) -> list[str]:
    names = [
        str(r["relname"])
        for r in await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent IN ('event_log'::regclass, 'ledger'::regclass)"
        )
    ]
    return [name for name in names if not await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{name}")')]


async def seed_baseline(dsn: str, *, max_brands: int = 64) -> int:
    """Add baseline brands until every event-log and ledger partition holds rows, then ANALYZE; returns brands added."""
    conn = await asyncpg.connect(dsn)
    try:
        added = 0
        now = datetime.now(UTC)
        while added < max_brands and (added == 0 or await _partitions_without_rows(conn)):
            brand_id = await conn.fetchval(
                "INSERT INTO brands (slug, name, timezone, config_version, settings, created_at)"
                " VALUES ($1, 'baseline', 'Europe/Rome', 1, '{}', $2) RETURNING id",
                f"baseline-{uuid.uuid4().hex[:8]}", now,
            )  # fmt: skip
            rows = await conn.fetch(
                "INSERT INTO members (brand_id, external_id, display_name, locale, attributes, created_at,"
                " updated_at) SELECT $1, 'b' || n, '', '', '{}', $2, $2 FROM generate_series(1, $3) n RETURNING id",
                brand_id, now, MEMBERS_PER_BRAND,
            )  # fmt: skip
            members = [r["id"] for r in rows]
            await conn.execute(
                "INSERT INTO point_balances (brand_id, member_id, available, pending, lifetime_earned, lifetime_spent,"
                " last_activity_at, updated_at) SELECT $1, m, 20, 0, 20, 0, $2, $2 FROM unnest($3::bigint[]) m",
                brand_id, now, members,
            )  # fmt: skip
            keys = [f"baseline-{n}" for n in range(EVENTS_PER_BRAND)]
            owners = [members[n % len(members)] for n in range(EVENTS_PER_BRAND)]
            at = [now - timedelta(minutes=n) for n in range(EVENTS_PER_BRAND)]
            await conn.execute(
                "INSERT INTO event_log (brand_id, event_key, member_id, type, occurred_at, received_at, properties,"
                " result) SELECT $1, k, m, 'visit', o, $2, '{}', '\\x'::bytea"
                " FROM unnest($3::text[], $4::bigint[], $5::timestamptz[]) AS u(k, m, o)",
                brand_id, now, keys, owners, at,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO ledger (brand_id, member_id, event_key, points, source, key, reason, occurred_at,"
                " local_day, created_at) SELECT $1, m, k, 10, 'rule', 'visit', '', o, o::date, $2"
                " FROM unnest($3::text[], $4::bigint[], $5::timestamptz[]) AS u(k, m, o)",
                brand_id, now, keys, owners, at,
            )  # fmt: skip
            added += 1
        await conn.execute("ANALYZE")
        return added
    finally:
        await conn.close()

"""The batch limit of ``bench/ingest.py``: the same event-log and ledger rows inserted with ``unnest``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from bench.common import raw_brand


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def raw_unnest(dsn: str, events: list[dict[str, Any]]) -> float:
    """The fastest raw batch form: the same event-log and ledger rows, one ``unnest`` insert per table, 1000-row transactions."""
    conn = await asyncpg.connect(dsn)
    try:
        brand_id, ids = await raw_brand(conn, members=sorted({e["member"] for e in events}))
        now = datetime.now(UTC)
        started = time.perf_counter()
        for start in range(0, len(events), 1000):
            chunk = events[start : start + 1000]
            at = [datetime.fromisoformat(e["occurred_at"]) for e in chunk]
            members = [ids[e["member"]] for e in chunk]
            keys = [e["id"] for e in chunk]
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO event_log (brand_id, event_key, member_id, type, occurred_at, received_at, properties,"
                    " result) SELECT $1, k, m, t, o, $6, p::jsonb, '[]'::bytea"
                    " FROM unnest($2::text[], $3::bigint[], $4::text[], $5::timestamptz[], $7::text[]) AS u(k, m, t, o, p)",
                    brand_id, keys, members, [e["type"] for e in chunk], at, now,
                    [_json(e["properties"]) for e in chunk],
                )  # fmt: skip
                await conn.execute(
                    "INSERT INTO ledger (brand_id, member_id, event_key, points, source, key, reason, occurred_at,"
                    " local_day, created_at) SELECT $1, m, k, 10, 'rule', t, '', o, d, $6"
                    " FROM unnest($2::bigint[], $3::text[], $4::text[], $5::timestamptz[], $7::date[]) AS u(m, k, t, o, d)",
                    brand_id, members, keys, [e["type"] for e in chunk], at, now, [a.date() for a in at],
                )  # fmt: skip
        return time.perf_counter() - started
    finally:
        await conn.close()

"""The unit's one statement (``engine.fused``) alone: how its columns are sent changes its time.

A 1000-event unit's rows (ledger lots, balances, event log; with ``--states``, 900 challenge states of
about 2 KB) are written by the statement of ``engine.fused``, each table's columns sent either as lists
(asyncpg encodes every element) or as array literals (``engine.array_literals``), for several sets of
kinds. Each round writes one unit per form, in a shuffled order, on one connection of a scratch database
with a baseline of other brands' rows. Reported: the median wall time of the statement (its transaction
included: all of it is inside the members' locks when a unit runs) and the client's CPU time for building
the parameters and sending them.

    .venv/bin/python bench/unit_write.py [--rounds 15] [--states]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import seed_baseline
from bench.common import median, print_table, raw_brand, scratch_database, write_json
from challenges.states import STATES_UPSERT
from engine import array_literals, fused

FORMS: dict[str, frozenset[str]] = {
    "lists (asyncpg encodes each element)": frozenset(),
    "every kind a literal": frozenset({"bigint", "varchar", "text", "jsonb", "bytea", "date", "timestamptz"}),
    "bigint, date, timestamptz literals": frozenset({"bigint", "date", "timestamptz"}),
    "these and varchar (the code's choice)": frozenset({"bigint", "varchar", "date", "timestamptz"}),
}


def _unit(rng: random.Random, brand: int, ids: list[int], now: datetime, *, states: bool) -> dict[str, list[Any]]:
    """A 1000-event unit's rows, as the pipeline builds them."""
    run = uuid.uuid4().hex[:8]
    ledger: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    effects = [{"type": "points_awarded", "points": 12, "source": "rule", "key": "purchase", "reason": ""}]
    for i in range(1000):
        member = rng.choice(ids)
        occurred = now - timedelta(minutes=rng.randint(1, 20000))
        key = f"{run}-{i}"
        ledger.append(
            {"brand_id": brand, "member_id": member, "event_key": key, "points": rng.randint(1, 80),
             "source": "rule", "key": "purchase", "reason": "", "occurred_at": occurred,
             "local_day": occurred.date(), "created_at": now, "kind": "earn", "lot_id": None,
             "available_at": now, "expires_at": None}
        )  # fmt: skip
        events.append(
            {"brand_id": brand, "event_key": key, "member_id": member, "type": "purchase", "occurred_at": occurred,
             "received_at": now, "properties": {"store": f"store-{rng.randint(1, 12)}",
                                                "amount": round(rng.uniform(2, 80), 2)},
             "result": msgspec.json.encode(effects * (8 if states else 1))}
        )  # fmt: skip
    members = sorted({row["member_id"] for row in ledger})
    balances = [
        {"brand_id": brand, "member_id": m, "available": 5, "pending": 0, "lifetime_earned": 5,
         "last_activity_at": now, "updated_at": now}
        for m in members
    ]  # fmt: skip
    state = '{"p":{' + ",".join(f'"c{k}":{{"2026-W{k % 50:02}":{{"n":{k},"v":[1,2,3]}}}}' for k in range(40)) + "}}"
    rows = [{"brand_id": brand, "member_id": m, "state": state, "updated_at": now} for m in members] if states else []
    return {"ledger": ledger, "events": events, "balances": balances, "states": rows}


async def _write(conn: asyncpg.Connection, unit: dict[str, list[Any]], *, brand: int, now: datetime,
                 states: bool, suffix: str) -> tuple[float, float]:  # fmt: skip
    """Write the unit with the current form; its wall and client CPU time in ms."""
    fused._statement.cache_clear()
    sql = fused._statement((STATES_UPSERT,)) if states else fused._build()
    ledger = [dict(row, event_key=row["event_key"] + suffix) for row in unit["ledger"]]
    events = [dict(row, event_key=row["event_key"] + suffix) for row in unit["events"]]
    tables: list[tuple[tuple[tuple[str, str], ...], list[Any]]] = [
        (fused._LEDGER, ledger), (fused._BALANCES, unit["balances"]), (fused._OUTBOX, []),
    ]  # fmt: skip
    if states:
        tables.append((STATES_UPSERT.columns, unit["states"]))
    tables.append((fused._EVENTS, events))
    cpu, wall = time.process_time(), time.perf_counter()
    parameters: list[Any] = [brand, now]
    for columns, rows in tables:
        parameters += fused._arrays(columns, rows, brand_id=brand, now=now)
    async with conn.transaction():
        await conn.execute(sql, *parameters)
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--states", action="store_true", help="with 900 challenge states of about 2 KB")
    args = parser.parse_args()
    wall: dict[str, list[float]] = {form: [] for form in FORMS}
    cpu: dict[str, list[float]] = {form: [] for form in FORMS}
    chosen = array_literals.LITERAL_KINDS
    async with scratch_database() as (_url, dsn):
        await seed_baseline(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            brand, members = await raw_brand(conn, name="unit write", members=[f"m{n}" for n in range(1, 5001)])
            ids = list(members.values())
            rng = random.Random(7)
            for round_no in range(args.rounds + 2):  # two warm-up rounds
                print(f"round {round_no + 1}/{args.rounds + 2} …", file=sys.stderr, flush=True)
                now = datetime.now(UTC)
                unit = _unit(rng, brand, ids, now, states=args.states)
                order = list(FORMS)
                rng.shuffle(order)
                for index, form in enumerate(order):
                    array_literals.LITERAL_KINDS = FORMS[form]
                    took, used = await _write(conn, unit, brand=brand, now=now, states=args.states, suffix=f"-{index}")
                    if round_no >= 2:
                        wall[form].append(took)
                        cpu[form].append(used)
        finally:
            array_literals.LITERAL_KINDS = chosen
            await conn.close()
    base = median(wall[next(iter(FORMS))])
    rows = [[form, median(wall[form]), median(cpu[form]), f"{median(wall[form]) / base:.2f}"] for form in FORMS]
    what = "1000 events, 900 challenge states" if args.states else "1000 events, earning rules"
    print_table(f"The unit's one statement ({what}; {args.rounds} rounds, medians)",
                ["form", "wall ms", "client CPU ms", "× lists"], rows)  # fmt: skip
    path = write_json(
        "unit_write_states" if args.states else "unit_write",
        {"rounds": args.rounds, "states": args.states, "at": datetime.now(UTC),
         "forms": {form: {"wall_ms": wall[form], "cpu_ms": cpu[form], "median_wall_ms": median(wall[form]),
                          "median_cpu_ms": median(cpu[form])} for form in FORMS}},
    )  # fmt: skip
    print(f"  wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())

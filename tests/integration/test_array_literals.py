"""Array literals (``engine.array_literals``): every kind's values come back from PostgreSQL as they were sent.

The unit's one statement (``engine.fused``) sends each column as one literal; these tests send generated
values of each kind through the same SQL pieces and compare what PostgreSQL made of them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import array_literals
from tests.conftest import PG_ADMIN_URL, _unavailable

#: PostgreSQL text holds any character but NUL (refused alike as a literal or as a list).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
TIMES = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)  # the whole range a datetime holds, one day in from each end (PostgreSQL's time zone is UTC here)
KINDS: dict[str, st.SearchStrategy[Any]] = {
    "bigint": st.integers(-(2**63), 2**63 - 1),
    "varchar": TEXT,
    "text": TEXT,
    "jsonb": JSON_VALUES,
    "bytea": st.binary(max_size=40),
    "date": st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    "timestamptz": TIMES,
}


@pytest.fixture(scope="module")
def run() -> Iterator[Callable[[str, list[Any]], list[Any]]]:
    """Round-trip values of a kind through PostgreSQL, on a connection and event loop of the module's own."""
    loop = asyncio.new_event_loop()
    try:
        conn = loop.run_until_complete(asyncpg.connect(PG_ADMIN_URL))
    except (OSError, asyncpg.PostgresError) as exc:
        loop.close()
        _unavailable("PostgreSQL", exc)
    loop.run_until_complete(conn.execute("SET TIME ZONE 'UTC'"))
    yield lambda kind, values: loop.run_until_complete(_round_trip(conn, kind, values))
    loop.run_until_complete(conn.close())
    loop.close()


async def _round_trip(conn: asyncpg.Connection, kind: str, values: list[Any]) -> list[Any]:
    value = array_literals.column(kind, "c")
    if kind == "jsonb":
        value += "::text"  # compared parsed: jsonb orders keys and spaces what it stores its own way
    sql = f"SELECT {value} FROM unnest({array_literals.parameter(kind, 1)}) WITH ORDINALITY AS u(c, n) ORDER BY n"
    rows = await conn.fetch(sql, array_literals.encode(kind, values))
    back = [row[0] for row in rows]
    return [json.loads(text) for text in back] if kind == "jsonb" else back


@pytest.fixture(params=["literal", "list"])
def form(request, monkeypatch) -> str:
    """Every kind sent as a literal, then as the list asyncpg encodes (the kinds not in LITERAL_KINDS go so)."""
    kinds = frozenset(KINDS) if request.param == "literal" else frozenset()
    monkeypatch.setattr(array_literals, "LITERAL_KINDS", kinds)
    return str(request.param)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_round_trips_with_nulls(run, kind, form):
    values = st.lists(KINDS[kind] if kind == "jsonb" else st.none() | KINDS[kind], max_size=20)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(values=values)
    def check(values: list[Any]) -> None:
        assert run(kind, values) == values

    check()


def test_special_strings_and_times_round_trip(run, form):
    strings = ["", "NULL", "null", '"', "\\", '\\"', "{a,b}", " spaced ", "a,b", "it's", "\\x00ff", "é ☃ 𝄞", None]
    assert run("varchar", strings) == strings
    times = [
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),  # before the epoch: negative microseconds
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 12, 7, 14, 3, 2, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_998, tzinfo=UTC),  # asyncpg sends datetime.max as 'infinity'
        datetime(1, 1, 2, 0, 0, 0, 1, tzinfo=UTC),
    ]
    assert run("timestamptz", times) == times
    assert run("bytea", [b"", b'\x00\\"', None]) == [b"", b'\x00\\"', None]

"""web.api.board_reads.plain_read: what the board-read lane takes itself, and what it leaves to the route."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from web.api.board_reads import Read, plain_read, query_pairs


def scope(query: bytes = b"", *, method: str = "GET", key: str = "weekly", **headers: str) -> Any:
    raw = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"method": method, "path": f"/v1/leaderboards/{key}", "query_string": query, "headers": raw}


BEARER = {"authorization": "Bearer pk_live_x"}


def test_a_plain_read_is_parsed_as_the_route_would():
    read = plain_read(scope(b"limit=3&offset=2&around=a+b&k=0&members=x%2By,%20z,,&period=2026-W47&scope=s1", **BEARER))
    assert read == Read(
        key="weekly",
        presented="pk_live_x",
        limit=3,
        offset=2,
        around="a b",
        k=0,
        members=("x+y", "z"),
        period="2026-W47",
        scope="s1",
    )
    assert plain_read(scope(b"", **BEARER)) == Read(key="weekly", presented="pk_live_x")


def test_the_key_is_read_in_the_routes_order():
    assert plain_read(scope(b"key=pk_q", authorization="Bearer pk_h")).presented == "pk_h"  # type: ignore[union-attr]
    assert plain_read(scope(b"key=pk_q", authorization="Basic eDp5", x_api_key="pk_x")).presented == "pk_x"  # type: ignore[union-attr]
    found = plain_read(scope(b"key=pk_q"))
    assert found is not None and found.presented == "pk_q" and found.query_key == "pk_q"
    assert plain_read(scope(b"limit=3")) is None  # no key at all: the route answers 401


@pytest.mark.parametrize(
    "query",
    [
        b"limit=0", b"limit=101", b"limit=+5", b"limit=5.0", b"limit=0x10", b"limit=" + b"9" * 10,
        b"offset=-1", b"k=26", b"limit=3&limit=3", b"around=", b"utm=x", b"around", b"around=a%00",
        b"around=%ff", b"period=" + b"x" * 17, b"around=" + b"a" * 256, b"members=" + b",".join(b"m%d" % n for n in range(101)),
    ],
)  # fmt: skip
def test_anything_unusual_goes_to_the_route(query):
    assert plain_read(scope(query, **BEARER)) is None


def test_only_get_with_a_board_key_of_one_segment():
    assert plain_read(scope(b"", method="HEAD", **BEARER)) is None
    assert plain_read(scope(b"", key="", **BEARER)) is None
    assert plain_read(scope(b"", key="a\x00b", **BEARER)) is None
    assert plain_read(scope(b"", key="weekly/definition", **BEARER)) is None  # another route
    assert plain_read(scope(b"", key="weekly/", **BEARER)) is None  # the router's to normalise
    assert plain_read({**scope(b"", **BEARER), "path": "/v1/leaderboards"}) is None
    assert plain_read({**scope(b"", **BEARER), "root_path": "/api"}) is None  # mounted: the router strips it


@given(st.binary(max_size=24).map(lambda b: bytes(b"a=&%+;1Z\xe9"[x % 9] for x in b)))
@example(b"")
@example(b"a=1&&k=2")
@example(b"a")
@example(b"=")
@example(b"a==b")
@example(b"k=%ZZ&a=+1")
def test_the_query_is_split_as_strict_parse_qsl_splits_it(raw):
    """The unescaped fast path and the escaped one give parse_qsl's pairs, and refuse what it refuses."""
    try:
        expected = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=bool(raw), errors="strict")
    except (UnicodeDecodeError, ValueError):
        expected = None
    assert query_pairs(raw) == expected

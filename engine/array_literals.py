r"""A column of a unit's rows as one PostgreSQL array literal: one text parameter instead of a list.

Given a list, asyncpg encodes each element in PostgreSQL's binary format, and first walks every element
with ``isinstance`` checks against ``collections.abc`` (looking for nested arrays). For the unit's one
statement (:mod:`engine.fused`), about twenty columns of up to 1000 rows, the statement's execution in
asyncpg (nearly all of it that encoding) was 28% of a rules-only batch unit's CPU in py-spy, all of it
inside the members' locks. Joined here, a column is one string that the driver sends as it is and
PostgreSQL parses with ``array_in``. PostgreSQL's parsing of a literal costs more than its reading of
asyncpg's binary form, so only the kinds where the sum is smaller go as literals (:data:`LITERAL_KINDS`).

Each kind has an encoder and the SQL that makes the column's value of a parsed element (:func:`column`):

- ``bigint``: decimal digits (anything but an ``int`` makes PostgreSQL refuse the statement);
- ``varchar``, ``text`` and JSON (sent as text, made ``jsonb`` per element): double-quoted, with ``\\``
  and ``"`` escaped, the only two characters special inside quotes;
- ``bytea``: hex (``\\x…``), quoted;
- ``date``: ISO 8601;
- ``timestamptz``: microseconds since the Unix epoch (cheaper to build than a datetime's ``isoformat``),
  made a time again from whole seconds plus the microseconds left, with no rounding at any date.

``None`` is ``NULL`` in every kind. The tests round-trip each kind through PostgreSQL
(``tests/integration/test_array_literals.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ENCODE = msgspec.json.encode

JSON = "jsonb"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(values: Sequence[Any]) -> list[str]:
    return ["NULL" if v is None else _quoted(v) for v in values]


def _json(values: Sequence[Any]) -> list[str]:
    return [_quoted(_ENCODE(v).decode()) for v in values]


def _bigint(values: Sequence[Any]) -> list[str]:
    return ["NULL" if v is None else str(v) for v in values]


def _bytea(values: Sequence[Any]) -> list[str]:
    return ["NULL" if v is None else '"\\\\x' + bytes(v).hex() + '"' for v in values]


def _date(values: Sequence[Any]) -> list[str]:
    return ["NULL" if v is None else v.isoformat() for v in values]


def _timestamptz(values: Sequence[Any]) -> list[str]:
    return ["NULL" if v is None else str((v - _EPOCH) // _MICROSECOND) for v in values]


_ENCODERS: dict[str, Callable[[Sequence[Any]], list[str]]] = {
    "bigint": _bigint, "varchar": _text, "text": _text, JSON: _json, "bytea": _bytea, "date": _date,
    "timestamptz": _timestamptz,
}  # fmt: skip
_WIRE = {JSON: "text", "timestamptz": "bigint"}
"""The array type a kind is parsed as, where it is not the kind itself."""
_VALUE = {
    JSON: "{c}::jsonb",
    "timestamptz": "(to_timestamp({c} / 1000000) + ({c} % 1000000) * interval '1 microsecond')",
}
"""The column's value of a parsed element ``{c}``, where it is not the element itself."""


LITERAL_KINDS = frozenset({"bigint", "varchar", "date", "timestamptz"})
"""The kinds sent as literals; the others go as lists, which asyncpg encodes (JSON as text).

Long strings are left to asyncpg: PostgreSQL reads an escaped element character by character, and the
challenges' states (about 2 KB of JSON, a quote every few characters) cost more that way than the client
saves. ``bench/unit_write.py`` (one 1000-event unit's statement alone, medians of 15 rounds): with earning
rules only, lists 116 ms of wall time and 24.7 ms of client CPU, these four kinds as literals 112 and 14.7,
every kind 114 and 14.3; with 900 states, lists 147 and 29.2, these four 143 and 17.4, every kind 193
and 33.9."""


def encode(kind: str, values: Sequence[Any]) -> str | list[Any]:
    """``values`` of ``kind`` as one array literal, or as the list asyncpg takes (JSON values encoded first).

    Raises:
        KeyError: a kind with no encoder.
    """
    if kind not in LITERAL_KINDS:
        if kind == JSON:
            return [_ENCODE(v).decode() for v in values]
        return values if isinstance(values, list) else list(values)  # the caller's list, not a copy of it
    return "{" + ",".join(_ENCODERS[kind](values)) + "}"


def parameter(kind: str, number: int) -> str:
    """The SQL of parameter ``number`` holding ``kind``'s values: ``$n::text::<array type>`` for a literal."""
    if kind not in LITERAL_KINDS:
        return f"${number}::{'text' if kind == JSON else kind}[]"
    return f"${number}::text::{_WIRE.get(kind, kind)}[]"


def column(kind: str, element: str) -> str:
    """The SQL of the column's value of ``element``, an element of :func:`parameter`'s array."""
    if kind not in LITERAL_KINDS:
        return f"{element}::jsonb" if kind == JSON else element
    return _VALUE.get(kind, "{c}").format(c=element)

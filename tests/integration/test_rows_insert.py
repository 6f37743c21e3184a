"""``engine.fused.RowsInsert``: a step's rows in one statement whose text does not depend on their number."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import text

from engine.fused import RowsInsert

pytestmark = pytest.mark.parametrize("backend", ["postgres+redis"], indirect=True)

ROWS = RowsInsert(
    "rows_probe",
    (("id", "bigint"), ("name", "varchar"), ("note", "text"), ("day", "date"), ("at", "timestamptz"),
     ("score", "double precision"), ("version", "integer")),
    "ON CONFLICT (id) DO NOTHING RETURNING id",
)  # fmt: skip
AT = datetime(2026, 11, 20, 9, 30, 0, 123456, tzinfo=UTC)


def _row(n: int, **values: object) -> dict[str, object]:
    return {"id": n, "name": f"n{n}", "note": "", "day": date(2026, 11, n % 28 + 1), "at": AT, "score": n / 4,
            "version": n, **values}  # fmt: skip


async def test_rows_come_back_as_sent_and_the_text_is_one_whatever_their_number(db):
    sent: list[str] = []

    def statement(_conn, _cursor, sql, *_args):
        sent.append(sql)

    engine = db.engines[0].sync_engine
    async with db.write() as session:
        await session.execute(text(
            "CREATE TEMP TABLE rows_probe (id bigint PRIMARY KEY, name varchar, note text, day date,"
            " at timestamptz, score double precision, version integer) ON COMMIT DROP"
        ))  # fmt: skip
        sa_event.listen(engine, "before_cursor_execute", statement)
        try:
            odd = _row(1, name='O\'Brien "quoted" {braced}, NULL', note=None, at=None, score=None)
            first = await ROWS.execute(session, [odd, _row(2)])
            many = await ROWS.execute(session, [_row(n) for n in range(1, 1001)])  # 1 and 2 exist: skipped
        finally:
            sa_event.remove(engine, "before_cursor_execute", statement)
        assert sorted(i for (i,) in first) == [1, 2]
        assert len(list(many)) == 998
        back = (await session.execute(text(
            "SELECT id, name, note, day, at, score, version FROM rows_probe WHERE id IN (1, 2, 999) ORDER BY id"
        ))).all()  # fmt: skip
    assert len(set(sent)) == 1 and len(sent) == 2, sent  # one text for 2 rows and for 1000
    assert [tuple(r) for r in back] == [
        (1, 'O\'Brien "quoted" {braced}, NULL', None, date(2026, 11, 2), None, None, 1),
        (2, "n2", "", date(2026, 11, 3), AT, 0.5, 2),
        (999, "n999", "", date(2026, 11, 20), AT, 249.75, 999),
    ]

"""The feed's look-back: ids just below the cursor are read again, but not turned into rows twice by one process."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from engine import topics
from engine.orm import OutboxRow
from notifications import feed
from notifications.models import TOPIC_KINDS


async def _outbox(db, brand_id: int, now) -> int:
    async with db.write() as session:
        row = topics.outbox_row(brand_id=brand_id, topic=next(iter(TOPIC_KINDS)), data={}, now=now)
        result = await session.execute(insert(OutboxRow).returning(OutboxRow.id), [row])
        return int(result.scalar_one())


async def test_each_message_is_read_into_rows_once_per_process_look_back_included(db, brand, clock, monkeypatch):
    given: list[int] = []
    record = feed._record_messages

    async def spy(session: Any, rows: list[Any], *, now: Any) -> set[tuple[int, int]]:
        given.extend(int(r[0]) for r in rows)
        return await record(session, rows, now=now)

    monkeypatch.setattr(feed, "_record_messages", spy)
    now = clock.now()
    mine = [await _outbox(db, brand.brand.id, now) for _ in range(3)]
    recorded: set[int] = set()
    await feed.derive(db, now=now, recorded=recorded)
    assert [i for i in given if i in mine] == mine
    given.clear()
    await feed.derive(db, now=now, recorded=recorded)  # the same ids are in the look-back window
    assert [i for i in given if i in mine] == []
    await feed.derive(db, now=now)  # without the process's memory they are read again, harmlessly
    assert [i for i in given if i in mine] == mine
    given.clear()
    later = await _outbox(db, brand.brand.id, now)
    await feed.derive(db, now=now, recorded=recorded)
    assert [i for i in given if i in [*mine, later]] == [later]
    assert set(mine) <= recorded and later in recorded

"""A repeated event id answers exactly the first answer, post-commit effects (ranks) included."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from leaderboards.orm import BoardRow
from tests.helpers import event
from tests.web.test_leaderboards import client, put_board  # noqa: F401 - fixture reused


@pytest.fixture(autouse=True)
async def _drop_boards(brand, db):
    yield
    async with db.write() as session:
        await session.execute(delete(BoardRow).where(BoardRow.brand_id == brand.brand.id))


async def test_duplicate_answers_the_complete_first_result(client, brand):  # noqa: F811
    await put_board(client, brand, "visits")
    body = event("dup-rank-1", "ada", "visit", "2026-03-02T10:00:00+00:00")
    first = await client.post("/v1/events", json=body, headers=brand.headers)
    assert first.status_code == 200, first.text
    kinds = [e["type"] for e in first.json()["effects"]]
    assert "rank_changed" in kinds, kinds
    again = await client.post("/v1/events", json=body, headers=brand.headers)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["effects"] == first.json()["effects"]

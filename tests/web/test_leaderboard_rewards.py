"""A closing period pays its badge rewards through the typed granter it was given (``grant_badge``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import delete

from engine.ids import MemberId
from leaderboards.orm import BoardRow
from leaderboards.service import Leaderboards
from tests.conftest import REDIS_URL
from tests.helpers import event

SUNDAY = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.fixture
async def client(backend, settings, redis, clock):
    """The app on the current backend (with real Redis, its own client on the app's loop)."""
    from web.app import create_app

    if backend.endswith("fakeredis"):
        app = create_app(settings, clock=clock, redis=redis)
    else:
        app = create_app(msgspec.structs.replace(settings, redis_url=REDIS_URL), clock=clock)
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
async def _drop_boards(brand, db):
    yield
    async with db.write() as session:
        await session.execute(delete(BoardRow).where(BoardRow.brand_id == brand.brand.id))


class Recorder:
    """A :class:`engine.grants.BadgeGranter` that remembers what it was asked to award."""

    def __init__(self) -> None:
        self.calls: list[tuple[MemberId, str, str, str]] = []

    async def __call__(self, session, *, brand, member_id, badge_key, reason, source, source_ref, now):
        self.calls.append((member_id, badge_key, source, source_ref))
        return []


async def test_a_closing_period_grants_its_badge_reward_through_the_given_granter(
    client, brand, clock, db, redis, redis_namespace
):
    body = {
        "key": "visits",
        "title": "Visits",
        "metric": {"kind": "event_count", "event_type": "visit"},
        "period": "weekly",
        "rewards": [{"from_rank": 1, "to_rank": 1, "badge": "champion"}],
    }
    assert (await client.put("/v1/leaderboards/visits", json=body, headers=brand.headers)).status_code in (200, 201)
    events = [event(f"a-{n}", "a", "visit", (SUNDAY + timedelta(minutes=n)).isoformat()) for n in range(2)]
    events.append(event("b-0", "b", "visit", SUNDAY.isoformat()))
    response = await client.post("/v1/events", json={"events": events}, headers=brand.headers)
    assert response.status_code == 200, response.text
    clock.set(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    granter = Recorder()
    lb = Leaderboards(db, redis, namespace=redis_namespace, clock=clock, close_interval=None, grant_badge=granter)
    assert await lb.close_periods(brand_id=brand.brand.id) == [f"{brand.brand.id}/visits/2026-W47"]
    assert [(badge, source, ref) for _member, badge, source, ref in granter.calls] == [
        ("champion", "board", "visits:2026-W47:")
    ]
    # Without a granter the period still closes (the badge is skipped with a warning), exactly once.
    assert (
        await Leaderboards(db, redis, namespace=redis_namespace, clock=clock, close_interval=None).close_periods(
            brand_id=brand.brand.id
        )
        == []
    )

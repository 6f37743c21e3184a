"""The composition root: every entry point gets the same typed wiring (``web/wiring.py``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from sqlalchemy import delete

from engine.outbox import OutboxProcessor
from engine.points import PointsProcessor
from leaderboards.orm import BoardRow
from tests.helpers import event


async def test_close_periods_command_pays_a_badge_reward(client, brand, clock, db, settings, monkeypatch):
    """`questline leaderboards close-periods` gets the server's badge granter: the reward badge is awarded."""
    from web.cli import cli

    now = datetime.now(UTC).replace(microsecond=0)  # the command runs on the system clock
    clock.set(now)
    badge = {"key": "top-visitor", "name": "Top visitor", "repeatable": True}
    assert (await client.put("/v1/badges/top-visitor", json=badge, headers=brand.headers)).status_code == 201
    board = {
        "key": "visits",
        "title": "Visits",
        "metric": {"kind": "event_count", "event_type": "visit"},
        "period": "weekly",
        "grace_minutes": 0,
        "rewards": [{"from_rank": 1, "to_rank": 1, "points": 10, "badge": "top-visitor"}],
    }
    assert (await client.put("/v1/leaderboards/visits", json=board, headers=brand.headers)).status_code == 201
    two_weeks_ago = (now - timedelta(days=14)).isoformat()
    sent = await client.post("/v1/events", json=event("v1", "m-top", "visit", two_weeks_ago), headers=brand.headers)
    assert sent.status_code == 200, sent.text
    for name, value in (
        ("DATABASE_URL", settings.database_url),
        ("REDIS_URL", settings.redis_url),
        ("REDIS_NAMESPACE", settings.redis_namespace),
    ):
        monkeypatch.setenv(f"QUESTLINE_{name}", value)
    try:
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, ["leaderboards", "close-periods", "--brand", brand.brand.slug]
        )
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-1] == "1 period(s) closed"
        shelf = (await client.get("/v1/members/m-top/badges", headers=brand.headers)).json()
        assert [b["key"] for b in shelf["earned"]] == ["top-visitor"]
        history = (await client.get("/v1/members/m-top/points", headers=brand.headers)).json()["entries"]
        assert (history[0]["points"], history[0]["source"]) == (10, "board")
    finally:
        async with db.write() as session:  # later app starts have no board of this test to rebuild
            await session.execute(delete(BoardRow).where(BoardRow.brand_id == brand.brand.id))


async def test_the_pipeline_is_built_once_with_every_step_in_order(client):
    """Segments, points, velocity limits, referrals, offers, then the domains (challenges before tiers before badges
    before boards), notifications (after the boards' ranks), live updates, the outbox wake-up."""
    services = client.app.state.services
    steps = services.pipeline.processors
    assert [p.name for p in steps] == [
        "segments", "points", "velocity", "referrals", "offers", "challenges", "tiers", "badges", "leaderboards",
        "notifications", "live", "outbox",
    ]  # fmt: skip
    assert isinstance(steps[1], PointsProcessor) and isinstance(steps[-1], OutboxProcessor)
    assert len(services.erasure_hooks) == 7
    assert set(services.export_hooks) == {
        "challenges", "enrollment", "points", "badges", "leaderboards", "rewards", "leagues", "review", "notifications",
    }  # fmt: skip
    assert len(services.member_update_hooks) == 1
    assert not hasattr(services, "extras")


async def test_openapi_documents_the_events_body(client):
    """The events handler reads the raw body itself, and the schema still documents what it accepts."""
    doc = (await client.get("/schema/openapi.json")).json()
    body = doc["paths"]["/v1/events"]["post"]["requestBody"]
    refs = {s["$ref"] for s in body["content"]["application/json"]["schema"]["oneOf"]}
    assert refs == {"#/components/schemas/Event", "#/components/schemas/EventBatch"}
    assert set(doc["components"]["schemas"]["Event"]["required"]) == {"id", "member", "type", "occurred_at"}


async def test_the_events_body_is_not_decoded_by_litestar(client, brand, monkeypatch):
    """Only ``engine.events.decode_events`` reads the body: Litestar's untyped JSON decoding is never used."""
    from litestar import Request

    async def refuse(self):
        raise AssertionError("the body was decoded untyped")

    monkeypatch.setattr(Request, "json", refuse)
    response = await client.post(
        "/v1/events", json=event("once", "m-once", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "once"

"""The points jobs: release and expiry from the background loop of the wiring and from `questline points …`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from click.testing import CliRunner
from sqlalchemy import func, select

from engine.orm import LedgerRow
from tests.helpers import event
from web.jobs import Jobs
from web.wiring import points_round

PROGRAM = {
    "points": {"expiry": {"kind": "rolling", "months": 1}, "notice_days": [7]},
    "earning_rules": [
        {"key": "refer", "event_type": "referral", "points": 200, "holding_days": 14},
        {"key": "visit", "event_type": "visit", "points": 10},
    ],
}


async def _kinds(db, brand_id) -> dict[str, int]:
    async with db.read() as session:
        rows = await session.execute(
            select(LedgerRow.kind, func.count()).where(LedgerRow.brand_id == brand_id).group_by(LedgerRow.kind)
        )
        return {kind: int(count) for kind, count in rows}


async def _setup(client, brand, clock, now: datetime) -> None:
    """Events written 20 days before ``now`` (so the referral's lot was held when written), then back to ``now``."""
    clock.set(now - timedelta(days=20))
    assert (await client.put("/v1/program", json=PROGRAM, headers=brand.headers)).status_code == 200
    for event_id, kind, days in (("r1", "referral", 20), ("v1", "visit", 40), ("v2", "visit", 20)):
        sent = await client.post(
            "/v1/events",
            json=event(event_id, "m", kind, (now - timedelta(days=days)).isoformat()),
            headers=brand.headers,
        )
        assert sent.status_code == 200, sent.text
    clock.set(now)


async def test_background_loop_releases_and_expires(client, brand, clock, db):
    await _setup(client, brand, clock, clock.now())
    assert (await _kinds(db, brand.brand.id)).get("release", 0) == 0
    # the job on this test's own loop: the app's connections live on the test client's loop
    woken: list[bool] = []
    services = SimpleNamespace(db=db, clock=clock, outbox=SimpleNamespace(notify=lambda: woken.append(True)))
    jobs = Jobs()
    jobs.every("points", 0.05, lambda: points_round(services))
    jobs.start()
    try:
        for _ in range(200):  # the scheduler runs the round on its interval; wait for a whole round to end
            if woken and (await _kinds(db, brand.brand.id)).get("expire", 0):
                break
            await asyncio.sleep(0.05)
    finally:
        await jobs.stop()
    assert woken  # expired points: the outbox is woken for the points.expired message
    kinds = await _kinds(db, brand.brand.id)
    assert (kinds["release"], kinds["expire"]) == (1, 1)  # the referral's hold ended; the 40-day-old visit expired
    view = (await client.get("/v1/members/m/points", headers=brand.headers)).json()
    assert (view["available"], view["pending"]) == (210, 0)


async def test_points_commands_release_and_expire_once(client, brand, clock, db, settings, monkeypatch):
    from web.cli import cli

    now = datetime.now(UTC).replace(microsecond=0)  # the commands run on the system clock
    clock.set(now)
    await _setup(client, brand, clock, now)
    for name, value in (
        ("DATABASE_URL", settings.database_url),
        ("REDIS_URL", settings.redis_url),
        ("REDIS_NAMESPACE", settings.redis_namespace),
        ("SECRET", settings.secret),
    ):
        monkeypatch.setenv(f"QUESTLINE_{name}", value)
    released = await asyncio.to_thread(CliRunner().invoke, cli, ["points", "release"])
    assert released.exit_code == 0, released.output
    assert released.output.startswith("released ")
    expired = await asyncio.to_thread(CliRunner().invoke, cli, ["points", "expire"])
    assert expired.exit_code == 0, expired.output
    assert "expired" in expired.output
    again = await asyncio.to_thread(CliRunner().invoke, cli, ["points", "expire"])
    assert again.exit_code == 0
    kinds = await _kinds(db, brand.brand.id)
    assert (kinds["release"], kinds["expire"]) == (1, 1)  # once per lot, however often the jobs run

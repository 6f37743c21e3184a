"""The program document beyond apply: simulation (writes nothing), backfill, and the CLI, on both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec
from click.testing import CliRunner
from sqlalchemy import func, select

from challenges.orm import MemberStateRow
from engine.db import Database, create_engine
from engine.orm import LedgerRow
from tests.helpers import event, make_brand

CAMPAIGN = {"key": "november", "title": "November", "starts_at": "2026-11-01", "ends_at": "2026-12-01"}
TWO_VISITS = {
    "key": "two-visits",
    "campaign": "november",
    "title": "Two visits",
    "rule": {"type": "count", "event_type": "visit", "target": 2},
    "reward": {"points": 50, "badge": "regular"},
}


async def seed_events(client, brand):
    response = await client.post(
        "/v1/events",
        json={
            "events": [
                event("a1", "anna", "visit", "2026-11-02T10:00:00+01:00"),
                event("a2", "anna", "visit", "2026-11-03T10:00:00+01:00"),
                event("a3", "anna", "visit", "2026-11-04T10:00:00+01:00"),
                event("b1", "bruno", "visit", "2026-11-05T10:00:00+01:00"),
                event("b2", "bruno", "purchase", "2026-11-05T11:00:00+01:00", amount=12),
                event("c1", "carla", "visit", "2026-10-20T10:00:00+02:00"),
                event("c2", "carla", "visit", "2026-11-06T10:00:00+01:00"),
            ]
        },
        headers=brand.headers,
    )
    assert response.status_code == 200, response.text


async def progress_rows(db, brand):
    async with db.read() as session:
        return await session.scalar(
            select(func.count()).select_from(MemberStateRow).where(MemberStateRow.brand_id == brand.brand.id)
        )


async def test_simulation_reports_the_cost_and_writes_nothing(client, brand, db):
    await seed_events(client, brand)
    draft = {
        "earning_rules": [{"key": "visit", "event_type": "visit", "points": 5}],
        "campaigns": [CAMPAIGN],
        "challenges": [TWO_VISITS],
    }
    response = await client.post(
        "/v1/program/simulate",
        params={"from": "2026-10-01", "to": "2026-12-01"},
        json=draft,
        headers=brand.headers,
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["events"], report["members"]) == (7, 3)
    assert report["points"] == {"earning_rules": 30, "challenges": 50, "total": 80}
    assert [
        (c["key"], c["completions"], c["members"], c["points"], c["members_with_progress"])
        for c in report["challenges"]
    ] == [("two-visits", 1, 1, 50, 3)]
    assert report["badges"] == {"regular": 1}
    assert report["earning_rules"] == [{"key": "visit", "points": 30, "events": 6}]
    assert [(m["member"], m["points"], m["completions"]) for m in report["top_members"]] == [
        ("anna", 65, 1),
        ("carla", 10, 0),
        ("bruno", 5, 0),
    ]
    narrow = await client.post(
        "/v1/program/simulate", params={"from": "2026-11-03", "to": "2026-11-05"}, json=draft, headers=brand.headers
    )
    assert (narrow.json()["events"], narrow.json()["points"]["challenges"]) == (2, 50)  # a2 and a3
    assert await progress_rows(db, brand) == 0
    assert (await client.get("/v1/program/versions", headers=brand.headers)).json() == []
    assert (await client.get("/v1/program", headers=brand.headers)).json()["challenges"] == []
    bad = await client.post(
        "/v1/program/simulate", json={"challenges": [{**TWO_VISITS, "campaign": "nope"}]}, headers=brand.headers
    )
    assert (bad.status_code, bad.json()["field"]) == (422, "$.challenges[0].campaign")
    backwards = await client.post(
        "/v1/program/simulate", params={"from": "2026-11-05", "to": "2026-11-01"}, headers=brand.headers
    )
    assert (backwards.status_code, backwards.json()["field"]) == (422, "to")


async def test_backfill_counts_past_events_once(client, brand, db, clock):
    await seed_events(client, brand)
    clock.set(datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
    without = await client.put(
        "/v1/program", json={"campaigns": [CAMPAIGN], "challenges": [TWO_VISITS]}, headers=brand.headers
    )
    assert without.json()["backfills"] == []
    explained = (await client.get("/v1/members/anna/challenges/two-visits/explain", headers=brand.headers)).json()
    assert {e["reason"] for e in explained["events"]} == {"not_live_yet"}
    assert explained["challenge"]["progress"] == 0

    with_backfill = {**TWO_VISITS, "backfill_from": "2026-11-01"}
    applied = await client.put(
        "/v1/program", json={"campaigns": [CAMPAIGN], "challenges": [with_backfill]}, headers=brand.headers
    )
    assert applied.status_code == 200, applied.text
    body = applied.json()
    assert body["changes"] == [
        'challenge two-visits: backfill_from: (none) → "2026-11-01", backfill from 2026-11-01 (progress kept)'
    ]
    (report,) = body["backfills"]
    assert (report["members"], report["updated"], report["completions"], report["points"]) == (3, 3, 1, 50)
    views = {
        m: (await client.get(f"/v1/members/{m}/challenges/two-visits", headers=brand.headers)).json()
        for m in ("anna", "bruno", "carla")
    }
    assert {m: (v["progress"], v["status"]) for m, v in views.items()} == {
        "anna": (2, "completed"),
        "bruno": (1, "in_progress"),
        "carla": (1, "in_progress"),  # her October visit is before the campaign
    }
    async with db.read() as session:
        ledger = list(
            await session.execute(
                select(LedgerRow.event_key, LedgerRow.points, LedgerRow.source).where(
                    LedgerRow.brand_id == brand.brand.id
                )
            )
        )
    assert sorted(ledger) == [("a2", 50, "challenge")]
    again = await client.put(
        "/v1/program", json={"campaigns": [CAMPAIGN], "challenges": [with_backfill]}, headers=brand.headers
    )
    assert (again.json()["changes"], again.json()["backfills"]) == ([], [])
    rerun = await client.post(
        "/v1/challenges/two-visits/backfill", params={"from": "2026-11-01"}, headers=brand.headers
    )
    assert (rerun.json()["completions"], rerun.json()["points"], rerun.json()["updated"]) == (0, 0, 0)
    response = await client.post(
        "/v1/events", json=event("b3", "bruno", "visit", "2026-11-21T09:00:00Z"), headers=brand.headers
    )
    assert [e["type"] for e in response.json()["effects"]] == [
        "progress_advanced",
        "challenge_completed",
        "points_awarded",
    ]


def test_cli_apply_and_simulate(database_url, tmp_path, monkeypatch):
    from web.cli import cli

    async def create():
        database = Database(create_engine(database_url))
        try:
            from engine.clock import SystemClock

            return await make_brand(database, SystemClock())
        finally:
            await database.dispose()

    brand = asyncio.run(create())
    monkeypatch.setenv("QUESTLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("QUESTLINE_REDIS_URL", "memory://")
    document = tmp_path / "program.yaml"
    document.write_text(
        "campaigns:\n"
        "  - key: always\n"
        "    title: Always on\n"
        "challenges:\n"
        "  - key: explorer\n"
        "    campaign: always\n"
        "    title: Explorer\n"
        "    rule: {type: distinct, event_type: visit, property: store, target: 3}\n"
        "    reward: {points: 20}\n"
    )
    runner = CliRunner()
    dry = runner.invoke(cli, ["apply", str(document), "--brand", brand.brand.slug, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines() == [
        "  campaign always: created",
        "  challenge explorer: created",
        "dry run on version 0: 2 change(s) would be applied; nothing written",
    ]
    real = runner.invoke(cli, ["apply", str(document), "--brand", brand.brand.slug])
    assert (real.exit_code, real.output.splitlines()[-1]) == (0, "applied as version 1")
    same = runner.invoke(cli, ["apply", str(document), "--brand", brand.brand.slug])
    assert same.output.splitlines() == ["no changes (still version 1)"]
    simulated = runner.invoke(
        cli, ["simulate", str(document), "--brand", brand.brand.slug, "--from", "2020-01-01", "--json"]
    )
    assert simulated.exit_code == 0, simulated.output
    report = msgspec.json.decode(simulated.output)
    assert (report["events"], report["challenges"][0]["key"]) == (0, "explorer")
    document.write_text(
        "challenges:\n  - key: explorer\n    campaign: gone\n    title: X\n    rule: {type: first, event_type: visit}\n"
    )
    broken = runner.invoke(cli, ["apply", str(document), "--brand", brand.brand.slug])
    assert broken.exit_code == 1
    assert "($.challenges[0].campaign)" in broken.output
    missing = runner.invoke(cli, ["apply", str(document), "--brand", "no-such-brand"])
    assert (missing.exit_code, "no brand 'no-such-brand'" in missing.output) == (1, True)

"""Challenges over HTTP on both backends: the issue's scenarios end to end, member API, explain, opt-in, CRUD."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from challenges.codec import decode_state
from challenges.orm import CompletionRow, MemberStateRow
from engine.orm import OutboxRow
from tests.helpers import event

CAMPAIGN = {"key": "autumn", "title": "Autumn reviews", "starts_at": "2026-11-01", "ends_at": "2026-12-01"}
CRITIC = {
    "key": "critic",
    "campaign": "autumn",
    "title": "Critic",
    "rule": {
        "type": "count",
        "event_type": "review",
        "target": 3,
        "filter": {"field": "properties.stars", "gte": 4},
    },
    "reward": {"points": 300, "badge": "critic"},
}


async def apply(client, brand, document, **params):
    response = await client.put("/v1/program", json=document, headers=brand.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def send(client, brand, *events):
    response = await client.post("/v1/events", json={"events": list(events)}, headers=brand.headers)
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def mine(client, brand, member, key):
    response = await client.get(f"/v1/members/{member}/challenges/{key}", headers=brand.headers)
    assert response.status_code == 200, response.text
    return response.json()


def effect_types(result):
    return [e["type"] for e in result["effects"]]


async def test_autumn_reviews_end_to_end(client, brand, db):
    await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [CRITIC]})
    results = await send(
        client,
        brand,
        event("r1", "m1", "review", "2026-11-02T10:00:00+01:00", stars=5),
        event("r2", "m1", "review", "2026-11-03T10:00:00+01:00", stars=3),
        event("r3", "m1", "review", "2026-11-04T10:00:00+01:00", stars=4),
        event("r4", "m1", "review", "2026-11-05T10:00:00+01:00", stars=4),
        event("r5", "m1", "review", "2026-11-06T10:00:00+01:00", stars=5),
    )
    assert [effect_types(r) for r in results] == [
        ["progress_advanced"],
        [],
        ["progress_advanced"],
        ["progress_advanced", "challenge_completed", "points_awarded"],
        [],
    ]
    completed = results[3]["effects"][1]
    assert (completed["challenge"], completed["badge"], completed["completed_at"]) == (
        "critic",
        "critic",
        "2026-11-05T09:00:00Z",
    )
    view = await mine(client, brand, "m1", "critic")
    assert (view["progress"], view["target"], view["percent"], view["status"], view["state"]) == (
        3,
        3,
        100,
        "completed",
        "active",
    )
    assert view["completed_at"] == "2026-11-05T09:00:00Z"
    assert (view["ends_at"], view["reward"]) == ("2026-11-30T23:00:00Z", {"points": 300, "badge": "critic"})
    points = (await client.get("/v1/members/m1/points", headers=brand.headers)).json()
    assert [(e["points"], e["source"], e["key"], e["event"]) for e in points["entries"]] == [
        (300, "challenge", "critic", "r4")
    ]
    async with db.read() as session:
        outbox = list(await session.scalars(select(OutboxRow.payload).where(OutboxRow.brand_id == brand.brand.id)))
    assert [(p["type"], p["data"]["challenge"], p["data"]["member"], p["data"]["points"]) for p in outbox] == [
        ("challenge.completed", "critic", "m1", 300)
    ]


async def test_same_event_twice_counts_once(client, brand):
    await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [CRITIC]})
    review = event("r1", "m1", "review", "2026-11-02T10:00:00+01:00", stars=5)
    first = await send(client, brand, review, review)
    again = await send(client, brand, review)
    assert [r["duplicate"] for r in first + again] == [False, True, True]
    assert (await mine(client, brand, "m1", "critic"))["progress"] == 1


async def test_events_exactly_at_window_start_and_end(client, brand):
    await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [CRITIC]})
    results = await send(
        client,
        brand,
        event("start", "m1", "review", "2026-10-31T23:00:00Z", stars=5),  # 2026-11-01 00:00 in Rome: counts
        event("end", "m1", "review", "2026-11-30T23:00:00Z", stars=5),  # 2026-12-01 00:00 in Rome: excluded
        event("before-end", "m1", "review", "2026-11-30T22:59:59Z", stars=5),
    )
    assert [effect_types(r) for r in results] == [["progress_advanced"], [], ["progress_advanced"]]
    explained = (await client.get("/v1/members/m1/challenges/critic/explain", headers=brand.headers)).json()
    assert [(e["id"], e["reason"]) for e in explained["events"]] == [
        ("end", "after_window"),
        ("before-end", "counted"),
        ("start", "counted"),
    ]


async def test_late_events(client, brand, clock):
    late = {**CRITIC, "max_lateness": "1d"}
    await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [late]})
    now = clock.now()  # 2026-11-20T10:00Z
    results = await send(
        client,
        brand,
        event("too-late", "m1", "review", (now - timedelta(days=1, seconds=1)).isoformat(), stars=5),
        event("in-time", "m1", "review", (now - timedelta(hours=23)).isoformat(), stars=5),
    )
    assert [effect_types(r) for r in results] == [[], ["progress_advanced"]]
    explained = (await client.get("/v1/members/m1/challenges/critic/explain", headers=brand.headers)).json()
    assert {e["id"]: e["reason"] for e in explained["events"]} == {"too-late": "too_late", "in-time": "counted"}


async def test_weekly_recurrence_across_a_week_boundary(client, brand, clock):
    weekly = {
        "key": "weekly",
        "campaign": "autumn",
        "title": "Two reviews a week",
        "rule": {"type": "count", "event_type": "review", "target": 2},
        "recurrence": "weekly",
    }
    await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [weekly]})
    results = await send(
        client,
        brand,
        event("sun", "m1", "review", "2026-11-15T23:30:00+01:00"),  # Sunday, ISO week 46
        event("mon", "m1", "review", "2026-11-16T00:10:00+01:00"),  # Monday, week 47: a new instance
        event("tue", "m1", "review", "2026-11-17T09:00:00+01:00"),
    )
    assert [[(e["type"], e.get("instance")) for e in r["effects"]] for r in results] == [
        [("progress_advanced", "2026-W46")],
        [("progress_advanced", "2026-W47")],
        [("progress_advanced", "2026-W47"), ("challenge_completed", "2026-W47")],
    ]
    view = await mine(client, brand, "m1", "weekly")  # now: Friday 2026-11-20, week 47
    assert (view["instance"], view["progress"], view["status"], view["completions"]) == ("2026-W47", 2, "completed", 1)
    assert (view["starts_at"], view["ends_at"]) == ("2026-11-15T23:00:00Z", "2026-11-22T23:00:00Z")
    clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))  # Monday of week 48: a fresh instance
    view = await mine(client, brand, "m1", "weekly")
    assert (view["instance"], view["progress"], view["status"], view["completions"]) == (
        "2026-W48",
        0,
        "not_started",
        1,
    )


async def test_completion_cap_reached(client, brand):
    daily = {
        "key": "daily",
        "campaign": "autumn",
        "title": "A review a day",
        "rule": {"type": "count", "event_type": "review", "target": 1},
        "recurrence": "daily",
        "max_completions": 2,
        "reward": {"points": 10},
    }
    await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [daily]})
    results = await send(
        client, brand, *(event(f"r{d}", "m1", "review", f"2026-11-1{d}T10:00:00+01:00") for d in (1, 2, 3))
    )
    assert [effect_types(r) for r in results] == [
        ["progress_advanced", "challenge_completed", "points_awarded"],
        ["progress_advanced", "challenge_completed", "points_awarded"],
        [],
    ]
    balance = (await client.get("/v1/members/m1", headers=brand.headers)).json()["points"]
    assert balance == 20
    view = await mine(client, brand, "m1", "daily")
    assert (view["status"], view["completions"], view["max_completions"]) == ("capped", 2, 2)


async def test_streak_across_the_dst_change_in_rome(client, brand, clock):
    spring = {"key": "spring", "title": "Spring", "starts_at": "2026-03-01", "ends_at": "2026-05-01"}
    streak = {
        "key": "streak",
        "campaign": "spring",
        "title": "Three days",
        "rule": {"type": "streak", "event_type": "visit", "target": 3},
    }
    await apply(client, brand, {"campaigns": [spring], "challenges": [streak]})
    clock.set(datetime(2026, 3, 30, 12, 0, tzinfo=UTC))
    results = await send(
        client,
        brand,
        event("sat", "m1", "visit", "2026-03-28T23:30:00+01:00"),
        event("sun", "m1", "visit", "2026-03-29T23:30:00+02:00"),  # 23 hours later, the next local day
        event("mon", "m1", "visit", "2026-03-30T00:30:00+02:00"),  # one hour later, the next local day again
    )
    assert effect_types(results[2]) == ["progress_advanced", "challenge_completed"]
    view = await mine(client, brand, "m1", "streak")
    assert view["streak"] == {"period": "day", "current": 3, "longest": 3, "freezes": 0}
    assert view["status"] == "completed"


async def test_bad_program_is_refused_and_changes_nothing(client, brand):
    first = await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [CRITIC]})
    broken = {**CRITIC, "rule": {**CRITIC["rule"], "filter": {"field": "properties.stars", "gte": "four"}}}
    broken_list = [broken, {**CRITIC, "key": "other", "title": "Other"}]
    response = await client.put(
        "/v1/program",
        json={
            "campaigns": [CAMPAIGN, {"key": "new", "title": "New"}],
            "challenges": [
                CRITIC,
                broken_list[1],
                {
                    **broken,
                    "rule": {
                        "type": "count",
                        "event_type": "review",
                        "target": 3,
                        "filter": {"field": "stars", "eq": 1},
                    },
                    "key": "third",
                },
            ],
        },
        headers=brand.headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "$.challenges[2].rule.filter.field"
    unknown = await client.put("/v1/program", json={"challenge": []}, headers=brand.headers)
    assert (unknown.status_code, unknown.json()["field"]) == (422, "$.challenge")
    exported = (await client.get("/v1/program", headers=brand.headers)).json()
    assert [c["key"] for c in exported["campaigns"]] == ["autumn"]
    assert [c["key"] for c in exported["challenges"]] == ["critic"]
    versions = (await client.get("/v1/program/versions", headers=brand.headers)).json()
    assert [v["version"] for v in versions] == [first["version"]] == [1]


async def test_dry_run_diff_writes_nothing(client, brand):
    await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [CRITIC]})
    changed = {**CRITIC, "title": "Critic!", "rule": {**CRITIC["rule"], "target": 5}}
    weekly = {**CRITIC, "key": "weekly", "title": "Weekly", "recurrence": "weekly"}
    diff = await apply(client, brand, {"challenges": [changed, weekly]}, dry_run="true")
    assert diff == {
        "dry_run": True,
        "changed": True,
        "version": 1,
        "changes": [
            "challenge weekly: created",
            'challenge critic: title: "Critic" → "Critic!", rule.target: 3 → 5 (progress kept)',
        ],
        "backfills": [],
    }
    exported = (await client.get("/v1/program", headers=brand.headers)).json()
    assert exported["challenges"] == [CRITIC]
    again = await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [CRITIC]})
    assert (again["changed"], again["changes"], again["version"]) == (False, [], 1)


async def test_changing_a_running_challenge_keeps_progress(client, brand):
    five = {**CRITIC, "rule": {**CRITIC["rule"], "target": 5}}
    await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [five]})
    await send(
        client,
        brand,
        event("r1", "m1", "review", "2026-11-02T10:00:00+01:00", stars=5),
        event("r2", "m1", "review", "2026-11-03T10:00:00+01:00", stars=5),
    )
    result = await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [CRITIC]})
    assert result["changes"] == ["challenge critic: rule.target: 5 → 3 (progress kept)"]
    assert (await mine(client, brand, "m1", "critic"))["progress"] == 2
    (done,) = await send(client, brand, event("r3", "m1", "review", "2026-11-04T10:00:00+01:00", stars=4))
    assert "challenge_completed" in effect_types(done)
    removed = await apply(client, brand, {"challenges": []})
    assert removed["changes"] == ["challenge critic: archived (progress kept)"]
    assert (await client.get("/v1/members/m1/challenges", headers=brand.headers)).json() == []
    await apply(client, brand, {"challenges": [CRITIC]})
    view = await mine(client, brand, "m1", "critic")
    assert (view["progress"], view["status"]) == (3, "completed")


async def test_export_yaml_round_trip_and_versions(client, brand):
    document = {
        "earning_rules": [{"key": "visit", "event_type": "visit", "points": 10}],
        "campaigns": [CAMPAIGN],
        "challenges": [CRITIC],
    }
    applied = await apply(client, brand, document)
    assert applied["changes"] == [
        "earning rule visit: created",
        "campaign autumn: created",
        "challenge critic: created",
    ]
    response = await client.get("/v1/program", params={"format": "yaml"}, headers=brand.headers)
    assert response.headers["content-type"].startswith("application/yaml")
    assert "critic" in response.text
    reapplied = await client.put(
        "/v1/program", content=response.text.encode(), headers={**brand.headers, "Content-Type": "application/yaml"}
    )
    assert reapplied.json()["changes"] == []
    removed = await apply(client, brand, {"earning_rules": []})
    assert removed["changes"] == ["earning rule visit: deleted (points already earned stay)"]
    versions = (await client.get("/v1/program/versions", headers=brand.headers)).json()
    assert [(v["version"], v["source"]) for v in versions] == [(2, "api"), (1, "api")]
    old = (await client.get("/v1/program", params={"version": 1}, headers=brand.headers)).json()
    assert [r["key"] for r in old["earning_rules"]] == ["visit"]
    stale = await client.put(
        "/v1/program", json={"earning_rules": []}, params={"base_version": 1}, headers=brand.headers
    )
    assert (stale.status_code, stale.json()["field"]) == (409, "base_version")


async def test_yaml_aliases_are_refused(client, brand):
    body = b"campaigns:\n  - &c {key: a, title: A}\n  - *c\n"
    response = await client.put(
        "/v1/program", content=body, headers={**brand.headers, "Content-Type": "application/yaml"}
    )
    assert (response.status_code, response.json()["field"]) == (422, "$")


async def test_opt_in_and_eligibility(client, brand):
    club = {**CAMPAIGN, "key": "club", "eligibility": {"field": "member.tier", "in": ["gold"]}, "opt_in": True}
    challenge = {**CRITIC, "campaign": "club"}
    await apply(client, brand, {"campaigns": [club], "challenges": [challenge]})
    await client.post(
        "/v1/members", json={"external_id": "gold", "attributes": {"tier": "gold"}}, headers=brand.headers
    )
    await client.post(
        "/v1/members", json={"external_id": "bronze", "attributes": {"tier": "bronze"}}, headers=brand.headers
    )
    (before,) = await send(client, brand, event("r0", "gold", "review", "2026-11-02T10:00:00+01:00", stars=5))
    assert effect_types(before) == []
    joined = await client.post("/v1/members/gold/campaigns/club/opt-in", headers=brand.headers)
    assert (joined.status_code, joined.json()["required"]) == (201, True)
    again = await client.post("/v1/members/gold/challenges/critic/opt-in", headers=brand.headers)
    assert (again.status_code, again.json()["opted_in_at"]) == (200, joined.json()["opted_in_at"])
    refused = await client.post("/v1/members/bronze/campaigns/club/opt-in", headers=brand.headers)
    assert (refused.status_code, refused.json()["field"]) == (409, "member")
    (after,) = await send(client, brand, event("r1", "gold", "review", "2026-11-20T10:00:00Z", stars=5))
    assert effect_types(after) == ["progress_advanced"]
    listed = (await client.get("/v1/members/gold/challenges", headers=brand.headers)).json()
    assert [(c["key"], c["progress"], c["opted_in"], c["requires_opt_in"]) for c in listed] == [
        ("critic", 1, True, True)
    ]
    assert (await client.get("/v1/members/bronze/challenges", headers=brand.headers)).json() == []
    explained = (await client.get("/v1/members/gold/challenges/critic/explain", headers=brand.headers)).json()
    assert [(e["id"], e["reason"]) for e in explained["events"]] == [("r1", "counted"), ("r0", "not_opted_in")]


async def test_per_resource_crud_and_pause(client, brand):
    put = await client.put("/v1/campaigns/autumn", json=CAMPAIGN, headers=brand.headers)
    assert put.status_code == 200, put.text
    assert (put.json()["campaign"]["state"], put.json()["changes"]) == ("active", ["campaign autumn: created"])
    put = await client.put("/v1/challenges/critic", json=CRITIC, headers=brand.headers)
    assert (put.status_code, put.json()["changes"]) == (200, ["challenge critic: created"])
    mismatch = await client.put("/v1/challenges/other", json=CRITIC, headers=brand.headers)
    assert (mismatch.status_code, mismatch.json()["field"]) == (422, "$.key")
    orphan = await client.put(
        "/v1/challenges/x", json={**CRITIC, "key": "x", "campaign": "nope"}, headers=brand.headers
    )
    assert (orphan.status_code, orphan.json()["field"]) == (422, "$.challenges[0].campaign")
    listed = (await client.get("/v1/challenges", headers=brand.headers)).json()
    assert [(c["challenge"]["key"], c["state"]) for c in listed] == [("critic", "active")]
    busy = await client.delete("/v1/campaigns/autumn", headers=brand.headers)
    assert busy.status_code == 409
    paused = await client.post("/v1/campaigns/autumn/pause", headers=brand.headers)
    assert paused.json()["campaign"]["state"] == "paused"
    (ignored,) = await send(client, brand, event("r1", "m1", "review", "2026-11-20T09:00:00Z", stars=5))
    assert effect_types(ignored) == []
    await client.post("/v1/campaigns/autumn/resume", headers=brand.headers)
    (counted,) = await send(client, brand, event("r2", "m1", "review", "2026-11-20T09:30:00Z", stars=5))
    assert effect_types(counted) == ["progress_advanced"]
    assert (await client.delete("/v1/challenges/critic", headers=brand.headers)).status_code == 204
    assert (await client.get("/v1/challenges/critic", headers=brand.headers)).status_code == 404
    assert (await client.delete("/v1/campaigns/autumn", headers=brand.headers)).status_code == 204
    versions = (await client.get("/v1/program/versions", headers=brand.headers)).json()
    assert [v["source"] for v in versions] == [
        "api:campaigns",  # archived the campaign
        "api:challenges",  # archived the challenge
        "api:campaigns",  # resumed
        "api:campaigns",  # paused
        "api:challenges",  # created the challenge
        "api:campaigns",  # created the campaign
    ]


async def test_keys_and_tenants(client, brand, db, clock):
    from tests.helpers import make_brand

    await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [CRITIC]})
    public = await client.get("/v1/challenges", headers=brand.public_headers)
    assert public.status_code == 403
    other = await make_brand(db, clock)
    assert (await client.get("/v1/challenges/critic", headers=other.headers)).status_code == 404
    assert (await client.get("/v1/program", headers=other.headers)).json()["challenges"] == []


async def test_two_requests_for_one_member_at_once(client, brand, backend):
    many = {**CRITIC, "rule": {"type": "count", "event_type": "review", "target": 100}}
    await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [many]})

    async def burst(prefix):
        return await client.post(
            "/v1/events",
            json={
                "events": [
                    event(f"{prefix}{i}", "m1", "review", f"2026-11-10T10:{i:02d}:00+01:00", stars=5) for i in range(10)
                ]
            },
            headers=brand.headers,
        )

    responses = await asyncio.gather(burst("a"), burst("b"), burst("c"))
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert (await mine(client, brand, "m1", "critic"))["progress"] == 30


async def test_one_state_row_per_member_and_one_completion_row_per_instance(client, brand, db):
    await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [CRITIC]})
    reviews = [event(f"r{i}", f"m{i % 3}", "review", f"2026-11-02T1{i}:00:00+01:00", stars=5) for i in range(9)]
    await send(client, brand, *reviews)
    async with db.read() as session:
        states = list(
            await session.execute(
                select(MemberStateRow.member_id, MemberStateRow.state).where(MemberStateRow.brand_id == brand.brand.id)
            )
        )
        completions = list(
            await session.execute(
                select(CompletionRow.instance, CompletionRow.event_key).where(CompletionRow.brand_id == brand.brand.id)
            )
        )
    assert len(states) == 3
    assert {tuple(decode_state(state).completions.values()) for _m, state in states} == {(1,)}
    assert sorted(completions) == [("", "r6"), ("", "r7"), ("", "r8")]


@pytest.mark.parametrize("path", ["/v1/members/ghost/challenges", "/v1/members/m1/challenges/nope"])
async def test_not_found(client, brand, path):
    await apply(client, brand, {"campaigns": [CAMPAIGN], "challenges": [CRITIC]})
    await send(client, brand, event("r1", "m1", "visit", "2026-11-02T10:00:00+01:00"))
    assert (await client.get(path, headers=brand.headers)).status_code == 404


async def test_member_export_and_erasure(client, brand, db):
    club = {**CAMPAIGN, "key": "club", "opt_in": True}
    await apply(client, brand, {"campaigns": [CAMPAIGN, club], "challenges": [CRITIC]})
    await client.post("/v1/members/m1/campaigns/club/opt-in", headers=brand.headers)
    await send(
        client, brand, *(event(f"r{i}", "m1", "review", f"2026-11-0{i + 2}T10:00:00+01:00", stars=5) for i in range(3))
    )
    exported = (await client.get("/v1/members/m1/export", headers=brand.headers)).json()["sections"]["challenges"]
    assert [(c["key"], c["status"]) for c in exported["challenges"]] == [("critic", "completed")]
    assert exported["completions"] == [
        {"challenge": "critic", "instance": "", "completed_at": "2026-11-04T09:00:00Z", "event": "r2"}
    ]
    assert exported["opt_ins"] == {"club": "2026-11-20T10:00:00Z"}
    assert (await client.delete("/v1/members/m1", headers=brand.headers)).status_code == 204
    async with db.read() as session:
        states = await session.scalar(
            select(func.count()).select_from(MemberStateRow).where(MemberStateRow.brand_id == brand.brand.id)
        )
        completions = await session.scalar(
            select(func.count()).select_from(CompletionRow).where(CompletionRow.brand_id == brand.brand.id)
        )
    assert (states, completions) == (0, 1)

"""Quests over HTTP: N of M, prerequisites (challenges and tiers), their validation, explain and the member view."""

from __future__ import annotations

import pytest

from tests.helpers import event

CAMPAIGN = {"key": "coffee", "title": "Coffee"}
STARTER = {
    "key": "starter",
    "campaign": "coffee",
    "title": "Starter",
    "rule": {"type": "count", "event_type": "visit", "target": 2},
}
PICK3 = {
    "key": "pick3",
    "campaign": "coffee",
    "title": "Pick three",
    "rule": {
        "type": "all_of",
        "required": 3,
        "steps": [{"event_type": t} for t in ("visit", "review", "purchase", "share", "refer")],
    },
    "requires": {"challenges": ["starter"]},
    "reward": {"points": 50},
}
GOLD = {
    "key": "gold-quest",
    "campaign": "coffee",
    "title": "Gold quest",
    "rule": {"type": "count", "event_type": "review", "target": 1},
    "requires": {"tiers": ["gold"]},
}


async def put_program(client, brand, document):
    return await client.put("/v1/program", json=document, headers=brand.headers)


async def send(client, brand, *events):
    response = await client.post("/v1/events", json={"events": list(events)}, headers=brand.headers)
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def view(client, brand, member, key):
    response = await client.get(f"/v1/members/{member}/challenges/{key}", headers=brand.headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("challenges", "field", "words"),
    [
        ([PICK3], "$.challenges[0].requires.challenges[0]", "which the program does not have"),
        (
            [{**STARTER, "requires": {"challenges": ["pick3"]}}, PICK3],
            "$.challenges[0].requires.challenges",
            "cycle",
        ),
        (
            [{**PICK3, "requires": None, "rule": {**PICK3["rule"], "required": 6}}],
            "$.challenges[0].rule.required",
            "only 5",
        ),
    ],
)
async def test_bad_quests_answer_422_and_change_nothing(client, brand, challenges, field, words):
    response = await put_program(client, brand, {"campaigns": [CAMPAIGN], "challenges": challenges})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field
    assert words in response.json()["detail"]
    exported = (await client.get("/v1/program", headers=brand.headers)).json()
    assert exported.get("challenges", []) == []


async def test_per_resource_prerequisites_are_checked_against_the_program(client, brand):
    assert (await put_program(client, brand, {"campaigns": [CAMPAIGN]})).status_code == 200
    orphan = await client.put("/v1/challenges/pick3", json=PICK3, headers=brand.headers)
    assert (orphan.status_code, orphan.json()["field"]) == (422, "$.challenges[0].requires.challenges[0]")
    assert (await client.get("/v1/challenges/pick3", headers=brand.headers)).status_code == 404
    assert (await client.put("/v1/challenges/starter", json=STARTER, headers=brand.headers)).status_code == 200
    assert (await client.put("/v1/challenges/pick3", json=PICK3, headers=brand.headers)).status_code == 200
    loop = {**STARTER, "requires": {"challenges": ["pick3"]}}
    cycle = await client.put("/v1/challenges/starter", json=loop, headers=brand.headers)
    assert cycle.status_code == 422
    assert "cycle" in cycle.json()["detail"]
    still_required = await client.delete("/v1/challenges/starter", headers=brand.headers)
    assert still_required.status_code == 409
    assert "pick3" in still_required.json()["detail"]
    assert (await client.get("/v1/challenges/starter", headers=brand.headers)).status_code == 200


async def test_a_locked_n_of_m_quest_opens_after_its_prerequisite(client, brand):
    document = {"campaigns": [CAMPAIGN], "challenges": [STARTER, PICK3, GOLD]}
    assert (await put_program(client, brand, document)).status_code == 200
    await send(client, brand, event("v0", "m1", "visit", "2026-11-02T09:00:00+01:00"))
    locked = await view(client, brand, "m1", "pick3")
    assert (locked["status"], locked["required"], locked["target"]) == ("locked", 3, 3)
    assert locked["locked"] == {"challenges": [{"key": "starter", "title": "Starter"}], "tiers": [], "condition": False}
    results = await send(
        client,
        brand,
        event("v1", "m1", "visit", "2026-11-02T10:00:00+01:00"),  # completes the starter; opens pick3 after it
        event("r1", "m1", "review", "2026-11-02T11:00:00+01:00"),
        event("v2", "m1", "visit", "2026-11-02T12:00:00+01:00"),
    )
    assert [e["challenge"] for e in results[0]["effects"] if e["type"] == "challenge_completed"] == ["starter"]
    assert not any(e.get("challenge") == "pick3" for e in results[0]["effects"])
    opened = await view(client, brand, "m1", "pick3")
    assert (opened["status"], opened["progress"], opened["locked"]) == ("in_progress", 2, None)
    assert [s["done"] for s in opened["steps"]] == [True, True, False, False, False]
    done = await send(client, brand, event("s1", "m1", "share", "2026-11-02T13:00:00+01:00"))
    assert {"challenge_completed", "points_awarded"} <= {e["type"] for e in done[0]["effects"]}
    explained = (await client.get("/v1/members/m1/challenges/pick3/explain", headers=brand.headers)).json()
    reasons = {e["id"]: e["reason"] for e in explained["events"]}
    assert (reasons["v0"], reasons["v1"], reasons["r1"], reasons["s1"]) == ("locked", "locked", "counted", "completed")


async def test_a_tier_quest_is_locked_for_other_tiers(client, brand):
    assert (await put_program(client, brand, {"campaigns": [CAMPAIGN], "challenges": [GOLD]})).status_code == 200
    for member, tier in (("silver-m", "silver"), ("gold-m", "gold")):
        enrolled = await client.post(
            "/v1/members", json={"external_id": member, "attributes": {"tier": tier}}, headers=brand.headers
        )
        assert enrolled.status_code in (200, 201)
    silver = await send(client, brand, event("rs", "silver-m", "review", "2026-11-02T09:00:00+01:00"))
    gold = await send(client, brand, event("rg", "gold-m", "review", "2026-11-02T09:00:00+01:00"))
    assert silver[0]["effects"] == []
    assert "challenge_completed" in {e["type"] for e in gold[0]["effects"]}
    assert (await view(client, brand, "silver-m", "gold-quest"))["locked"]["tiers"] == ["gold"]
    assert (await view(client, brand, "gold-m", "gold-quest"))["status"] == "completed"


async def test_simulation_and_backfill_follow_prerequisites(client, brand, clock):
    from datetime import UTC, datetime

    await send(
        client,
        brand,
        *(event(f"v{i}", "m1", "visit", f"2026-11-0{i + 1}T10:00:00Z") for i in range(3)),
        event("r1", "m1", "review", "2026-11-05T10:00:00Z"),
        event("p1", "m1", "purchase", "2026-11-06T10:00:00Z"),
        event("x1", "m2", "review", "2026-11-05T10:00:00Z"),  # m2 never completes the starter
        event("x2", "m2", "purchase", "2026-11-06T10:00:00Z"),
        event("x3", "m2", "share", "2026-11-07T10:00:00Z"),
    )
    draft = {"campaigns": [CAMPAIGN], "challenges": [STARTER, PICK3]}
    simulated = await client.post(
        "/v1/program/simulate", params={"from": "2026-11-01", "to": "2026-12-01"}, json=draft, headers=brand.headers
    )
    assert simulated.status_code == 200, simulated.text
    report = {c["key"]: (c["completions"], c["members_with_progress"]) for c in simulated.json()["challenges"]}
    # m1: the 2nd visit completes the starter; the 3rd visit, the review and the purchase are 3 of pick3's tasks
    assert report == {"starter": (1, 1), "pick3": (1, 1)}
    clock.set(datetime(2026, 11, 21, tzinfo=UTC))  # the program goes live after the events arrived
    backfilled = [{**STARTER, "backfill_from": "2026-11-01"}, {**PICK3, "backfill_from": "2026-11-01"}]
    assert (await put_program(client, brand, {"campaigns": [CAMPAIGN], "challenges": backfilled})).status_code == 200
    m1, m2 = await view(client, brand, "m1", "pick3"), await view(client, brand, "m2", "pick3")
    assert (m1["status"], m1["progress"]) == ("completed", 3)
    assert (m2["status"], m2["progress"], m2["locked"]["challenges"][0]["key"]) == ("locked", 0, "starter")

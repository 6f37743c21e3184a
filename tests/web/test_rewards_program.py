"""The program document's ``points`` and ``rewards`` sections: validated first, dry run, apply, export, versions."""

from __future__ import annotations

import yaml

DOC = {
    "points": {"expiry": {"kind": "calendar", "count": 1, "unit": "year"}, "notice_days": [30, 7]},
    "rewards": [
        {"key": "coffee", "name": {"en": "Free coffee", "it": "Caffè gratis"}, "cost": 60, "type": "product"},
        {
            "key": "voucher",
            "name": {"en": "€5 voucher"},
            "cost": 100,
            "type": "voucher",
            "codes": {"source": "pattern", "pattern": "QL-XXXX-####"},
            "limit": {"count": 1, "period": "week"},
        },
    ],
}


async def _keys(client, brand) -> list[str]:
    return [r["reward"]["key"] for r in (await client.get("/v1/rewards", headers=brand.headers)).json()]


async def test_sections_are_validated_before_anything_changes(client, brand):
    for document, field in (
        ({**DOC, "rewards": [{**DOC["rewards"][0], "cost": 0}]}, "$.rewards[0].cost"),
        ({**DOC, "rewards": [{**DOC["rewards"][1], "codes": None}]}, "$.rewards[0].codes"),
        ({**DOC, "rewards": [DOC["rewards"][0], DOC["rewards"][0]]}, "$.rewards[1].key"),
        ({**DOC, "rewards": {"coffee": 1}}, "$.rewards"),
        ({**DOC, "points": {"expiry": {"kind": "someday"}}}, "$.points"),
        ({**DOC, "points": [1]}, "$.points"),
    ):
        response = await client.put("/v1/program", json=document, headers=brand.headers)
        assert response.status_code == 422, (field, response.text)
        assert response.json()["field"].startswith(field), (field, response.json())
    assert await _keys(client, brand) == []
    exported = yaml.safe_load((await client.get("/v1/program", headers=brand.headers)).text)
    assert "points" not in exported and exported.get("rewards") == []


async def test_dry_run_apply_export_and_versions(client, brand):
    dry = await client.put("/v1/program?dry_run=true", json=DOC, headers=brand.headers)
    assert dry.status_code == 200 and dry.json()["dry_run"] is True
    assert sorted(dry.json()["changes"])[0].startswith("points: expiry calendar")
    assert await _keys(client, brand) == []
    applied = (await client.put("/v1/program", json=DOC, headers=brand.headers)).json()
    assert applied["changed"] and "reward coffee: created" in applied["changes"]
    assert await _keys(client, brand) == ["coffee", "voucher"]
    again = (await client.put("/v1/program", json=DOC, headers=brand.headers)).json()
    assert again["changed"] is False and again["changes"] == []
    exported = yaml.safe_load((await client.get("/v1/program", headers=brand.headers)).text)
    assert exported["points"] == DOC["points"]
    for given, stored in zip(DOC["rewards"], exported["rewards"], strict=True):
        assert {k: stored[k] for k in given} == given
    assert [r["key"] for r in exported["rewards"]] == ["coffee", "voucher"]
    # a round trip of the export changes nothing
    assert (await client.put("/v1/program", json=exported, headers=brand.headers)).json()["changes"] == []
    versions = (await client.get("/v1/program/versions", headers=brand.headers)).json()
    assert len(versions) >= 1


async def test_rewards_left_out_are_removed_or_retired(client, brand):
    await client.put("/v1/program", json=DOC, headers=brand.headers)
    await client.post("/v1/members", json={"external_id": "m"}, headers=brand.headers)
    await client.post("/v1/members/m/points/adjustments", json={"points": 500, "reason": "x"}, headers=brand.headers)
    redeemed = await client.post(
        "/v1/members/m/redemptions", json={"reward": "voucher", "idempotency_key": "1"}, headers=brand.headers
    )
    assert redeemed.status_code == 201 and redeemed.json()["redemption"]["code"].startswith("QL-")
    changes = (await client.put("/v1/program", json={"rewards": []}, headers=brand.headers)).json()["changes"]
    assert sorted(changes) == ["reward coffee: removed", "reward voucher: paused and hidden (it has redemptions)"]
    left = (await client.get("/v1/rewards", headers=brand.headers)).json()
    assert [(r["reward"]["key"], r["reward"]["paused"], r["reward"]["visible"]) for r in left] == [
        ("voucher", True, False)
    ]
    rid = redeemed.json()["redemption"]["id"]
    assert (await client.get(f"/v1/redemptions/{rid}", headers=brand.headers)).status_code == 200

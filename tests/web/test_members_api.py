"""Members, points history, adjustments, earning rules and keys over HTTP."""

from engine.tenants import KeyCache, KeyKind, issue_key, list_keys, revoke_key, rotate_key
from tests.helpers import event, row_counts


async def test_enrol_update_and_lookup(client, brand):
    created = await client.post(
        "/v1/members",
        json={"external_id": "m-1", "display_name": "Giulia", "locale": "it", "attributes": {"store": "milano"}},
        headers=brand.headers,
    )
    assert created.status_code == 201
    assert created.json()["points"] == 0
    updated = await client.post(
        "/v1/members", json={"external_id": "m-1", "attributes": {"tier": "gold"}}, headers=brand.headers
    )
    assert updated.status_code == 200
    assert updated.json()["display_name"] == "Giulia"
    assert updated.json()["attributes"] == {"store": "milano", "tier": "gold"}
    found = await client.get("/v1/members/m-1", headers=brand.headers)
    assert found.json()["locale"] == "it"
    missing = await client.get("/v1/members/nobody", headers=brand.headers)
    assert missing.status_code == 404 and missing.json()["field"] == "external_id"


async def test_enrol_rejects_bad_input(client, brand, db):
    before = await row_counts(db, brand.brand.id)
    for payload, field in (
        ({"display_name": "no id"}, "$.external_id"),
        ({"external_id": "m", "locale": "not a locale"}, "$.locale"),
        ({"external_id": "m", "unknown": 1}, "$.unknown"),
        ({"external_id": "m", "attributes": {"n": 1e20}}, "$.attributes.n"),
    ):
        response = await client.post("/v1/members", json=payload, headers=brand.headers)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
    assert await row_counts(db, brand.brand.id) == before


async def test_members_are_created_by_their_first_event(client, brand):
    await client.post("/v1/events", json=event("e", "walk-in", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers)
    found = await client.get("/v1/members/walk-in", headers=brand.headers)
    assert found.status_code == 200 and found.json()["points"] == 0


async def test_adjustments_append_and_history_pages(client, brand):
    await client.post("/v1/members", json={"external_id": "m"}, headers=brand.headers)
    for points in (100, -30, 5):
        response = await client.post(
            "/v1/members/m/points/adjustments",
            json={"points": points, "reason": f"fix {points}"},
            headers=brand.headers,
        )
        assert response.status_code == 201
    page1 = (await client.get("/v1/members/m/points?limit=2", headers=brand.headers)).json()
    assert page1["balance"] == 75
    assert [e["points"] for e in page1["entries"]] == [5, -30]
    page2 = (
        await client.get(f"/v1/members/m/points?limit=2&before={page1['next_before']}", headers=brand.headers)
    ).json()
    assert [e["points"] for e in page2["entries"]] == [100] and page2["next_before"] is None
    assert page2["entries"][0]["reason"] == "fix 100" and page2["entries"][0]["source"] == "adjustment"
    zero = await client.post(
        "/v1/members/m/points/adjustments", json={"points": 0, "reason": "x"}, headers=brand.headers
    )
    assert zero.status_code == 422
    no_reason = await client.post("/v1/members/m/points/adjustments", json={"points": 3}, headers=brand.headers)
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "$.reason"


async def test_earning_rules_crud_and_validation(client, brand):
    rule = {"key": "review", "event_type": "review", "points": 50, "filter": {"field": "properties.stars", "gte": 4}}
    assert (await client.put("/v1/earning-rules/review", json=rule, headers=brand.headers)).status_code == 200
    typo = {**rule, "filter": {"field": "properties.stars", "gtee": 4}}
    bad = await client.put("/v1/earning-rules/review", json=typo, headers=brand.headers)
    assert bad.status_code == 422 and bad.json()["field"] == "$.filter.gtee"
    listed = (await client.get("/v1/earning-rules", headers=brand.headers)).json()
    assert listed[0]["filter"] == {"field": "properties.stars", "gte": 4}
    first = await client.post(
        "/v1/events", json=event("r1", "m", "review", "2026-11-20T09:00:00Z", stars=5), headers=brand.headers
    )
    assert first.json()["effects"][0]["points"] == 50
    assert (await client.delete("/v1/earning-rules/review", headers=brand.headers)).status_code == 204
    after = await client.post(
        "/v1/events", json=event("r2", "m", "review", "2026-11-20T09:00:00Z", stars=5), headers=brand.headers
    )
    assert after.json()["effects"] == []
    assert (await client.delete("/v1/earning-rules/review", headers=brand.headers)).status_code == 404


async def test_revoked_and_rotated_keys_stop_working(client, brand, db, clock):
    extra = await issue_key(db, brand_id=brand.brand.id, kind=KeyKind.SECRET, now=clock.now(), label="pos")
    headers = {"Authorization": f"Bearer {extra.key}"}
    assert (await client.get("/v1/earning-rules", headers=headers)).status_code == 200
    await revoke_key(db, brand_id=brand.brand.id, prefix=extra.prefix, now=clock.now())
    KeyCache.clear_all()
    assert (await client.get("/v1/earning-rules", headers=headers)).status_code == 401
    new = await rotate_key(db, brand_id=brand.brand.id, kind=KeyKind.SECRET, now=clock.now())
    KeyCache.clear_all()
    assert (await client.get("/v1/earning-rules", headers=brand.headers)).status_code == 401
    assert (await client.get("/v1/earning-rules", headers={"Authorization": f"Bearer {new.key}"})).status_code == 200
    async with db.read() as session:
        keys = await list_keys(session, brand.brand.id)
    live = [k for k in keys if k.revoked_at is None]
    assert [k.kind for k in live] == [KeyKind.SECRET, KeyKind.PUBLISHABLE] or {k.kind for k in live} == {
        KeyKind.SECRET,
        KeyKind.PUBLISHABLE,
    }
    assert all(not k.prefix.endswith(new.key[-4:]) for k in keys)  # only prefixes are stored


async def test_problem_details_for_unknown_routes_and_methods(client, brand):
    missing = await client.get("/v1/nowhere", headers=brand.headers)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    wrong = await client.get("/v1/events", headers=brand.headers)
    assert wrong.status_code == 405 and wrong.json()["status"] == 405


async def test_openapi_documents_the_api(client):
    schema = (await client.get("/schema/openapi.json")).json()
    for path in ("/v1/events", "/v1/members", "/v1/members/{external_id}/points", "/v1/earning-rules/{key}"):
        assert path in schema["paths"], path


async def test_erasure_removes_identity_and_keeps_the_ledger(client, brand, db):
    await client.post(
        "/v1/members",
        json={"external_id": "crm-4711", "display_name": "Mario Rossi", "attributes": {"email": "mario@example.com"}},
        headers=brand.headers,
    )
    await client.post(
        "/v1/members/crm-4711/points/adjustments", json={"points": 40, "reason": "welcome"}, headers=brand.headers
    )
    export = await client.get("/v1/members/crm-4711/export", headers=brand.headers)
    assert export.status_code == 200
    data = export.json()
    assert data["member"]["display_name"] == "Mario Rossi"
    assert [e["points"] for e in data["ledger"]] == [40]

    assert (await client.delete("/v1/members/crm-4711", headers=brand.headers)).status_code == 204
    assert (await client.get("/v1/members/crm-4711", headers=brand.headers)).status_code == 404
    assert (await client.delete("/v1/members/crm-4711", headers=brand.headers)).status_code == 404
    counts = await row_counts(db, brand.brand.id)
    assert counts["members"] == 1 and counts["ledger"] == 1  # pseudonymous row and entry kept for accounting
    from sqlalchemy import select

    from engine.orm import MemberRow

    async with db.read() as session:
        row = await session.scalar(select(MemberRow).where(MemberRow.brand_id == brand.brand.id))
    assert row.external_id.startswith("erased-")
    assert row.display_name == "" and "email" not in row.attributes

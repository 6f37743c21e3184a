"""Rewards over HTTP on both backends: catalog, code pools, redemption and its refusals, QR, points, liability."""

from datetime import timedelta

import pytest

from tests.helpers import event

COFFEE = {"name": {"en": "Free coffee", "it": "Caffè gratis"}, "cost": 60, "type": "product"}
VOUCHER = {
    "name": {"en": "€5 voucher", "it": "Buono da 5 €"},
    "cost": 100,
    "type": "voucher",
    "codes": {"source": "pool"},
    "stock": 10,
}


async def _member(client, brand, member_id: str, points: int) -> None:
    await client.post("/v1/members", json={"external_id": member_id}, headers=brand.headers)
    if points:
        adjusted = await client.post(
            f"/v1/members/{member_id}/points/adjustments",
            json={"points": points, "reason": "welcome"},
            headers=brand.headers,
        )
        assert adjusted.status_code == 201, adjusted.text


async def test_catalog_crud_and_validation(client, brand):
    created = await client.put("/v1/rewards/coffee", json=COFFEE, headers=brand.headers)
    assert created.status_code == 200, created.text
    assert created.json()["reward"]["key"] == "coffee" and created.json()["remaining"] is None
    bad = await client.put("/v1/rewards/voucher", json={**VOUCHER, "codes": None}, headers=brand.headers)
    assert bad.status_code == 422 and bad.json()["field"] == "$.codes"
    typo = await client.put("/v1/rewards/coffee", json={**COFFEE, "costt": 1}, headers=brand.headers)
    assert typo.status_code == 422 and typo.json()["field"] == "$.costt"
    bad_key = await client.put("/v1/rewards/Bad Key", json=COFFEE, headers=brand.headers)
    assert bad_key.status_code == 422
    await client.put("/v1/rewards/voucher", json=VOUCHER, headers=brand.headers)
    listed = (await client.get("/v1/rewards", headers=brand.headers)).json()
    assert [r["reward"]["key"] for r in listed] == ["coffee", "voucher"]
    assert listed[1]["remaining"] == 10 and listed[1]["codes"] == {"available": 0, "issued": 0, "void": 0}
    assert (await client.get("/v1/rewards/nope", headers=brand.headers)).status_code == 404
    assert (await client.delete("/v1/rewards/coffee", headers=brand.headers)).status_code == 204
    assert (await client.get("/v1/rewards/coffee", headers=brand.headers)).status_code == 404
    assert (await client.get("/v1/rewards", headers=brand.public_headers)).status_code in (401, 403)


async def test_code_pool_upload_csv_and_json(client, brand):
    await client.put("/v1/rewards/voucher", json=VOUCHER, headers=brand.headers)
    csv = await client.post(
        "/v1/rewards/voucher/codes",
        content="code\nAAA-1\nAAA-2\nAAA-1\n\n",
        headers={**brand.headers, "Content-Type": "text/csv"},
    )
    assert csv.status_code == 201, csv.text
    assert csv.json() == {"added": 2, "duplicates": 0, "available": 2}
    as_json = await client.post("/v1/rewards/voucher/codes", json=["AAA-2", "BBB-1"], headers=brand.headers)
    assert as_json.json() == {"added": 1, "duplicates": 1, "available": 3}
    counts = await client.get("/v1/rewards/voucher/codes", headers=brand.headers)
    assert counts.json() == {"available": 3, "issued": 0, "void": 0}
    no_pattern = await client.post("/v1/rewards/voucher/codes", json={"generate": 5}, headers=brand.headers)
    assert no_pattern.status_code == 422 and no_pattern.json()["field"] == "codes.pattern"
    garbage = await client.post(
        "/v1/rewards/voucher/codes", content=b"{not json", headers={**brand.headers, "Content-Type": "application/json"}
    )
    assert garbage.status_code == 422


async def test_redeem_use_cancel_and_qr(client, brand):
    await client.put("/v1/rewards/voucher", json=VOUCHER, headers=brand.headers)
    await client.post("/v1/rewards/voucher/codes", json=["AAA-1", "AAA-2"], headers=brand.headers)
    await _member(client, brand, "m", 250)
    body = {"reward": "voucher"}
    first = await client.post(
        "/v1/members/m/redemptions", json=body, headers={**brand.headers, "Idempotency-Key": "r-1"}
    )
    assert first.status_code == 201, first.text
    out = first.json()
    assert out["redemption"]["code"] == "AAA-1" and out["redemption"]["status"] == "issued"
    rid = out["redemption"]["id"]
    assert out["qr_svg"] == f"/v1/redemptions/{rid}/qr.svg"
    replay = await client.post(
        "/v1/members/m/redemptions", json=body, headers={**brand.headers, "Idempotency-Key": "r-1"}
    )
    # the Idempotency-Key middleware replays the first answer (201) and says so; the same redemption either way
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["redemption"] == out["redemption"]
    points = (await client.get("/v1/members/m/points", headers=brand.headers)).json()
    assert points["available"] == points["balance"] == 150 and points["lifetime_spent"] == 100
    svg = await client.get(f"/v1/redemptions/{rid}/qr.svg", headers=brand.headers)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content
    png = await client.get(f"/v1/redemptions/{rid}/qr.png", headers=brand.headers)
    assert png.content.startswith(b"\x89PNG")
    read = (await client.get(f"/v1/redemptions/{rid}", headers=brand.headers)).json()
    assert read["redemption"]["code"] == "AAA-1"
    second = await client.post(
        "/v1/members/m/redemptions", json={"reward": "voucher", "idempotency_key": "r-2"}, headers=brand.headers
    )
    assert second.json()["redemption"]["code"] == "AAA-2"
    used = await client.post(f"/v1/redemptions/{rid}/use", headers=brand.headers)
    assert used.status_code == 200 and used.json()["redemption"]["status"] == "used"
    refused = await client.post(f"/v1/redemptions/{rid}/cancel", headers=brand.headers)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/redemption-state")
    rid2 = second.json()["redemption"]["id"]
    cancelled = await client.post(
        f"/v1/redemptions/{rid2}/cancel", json={"reason": "changed mind"}, headers=brand.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["redemption"]["status"] == "cancelled"
    assert cancelled.json()["redemption"]["refund"] == "refunded"
    assert (await client.get("/v1/members/m/points", headers=brand.headers)).json()["available"] == 150
    assert (await client.get("/v1/rewards/voucher/codes", headers=brand.headers)).json()["available"] == 1
    page = (await client.get("/v1/members/m/redemptions?limit=1", headers=brand.headers)).json()
    assert [r["id"] for r in page["redemptions"]] == [rid2] and page["next_before"] is not None
    rest = (await client.get(f"/v1/members/m/redemptions?before={page['next_before']}", headers=brand.headers)).json()
    assert [r["id"] for r in rest["redemptions"]] == [rid] and rest["next_before"] is None
    assert (await client.get("/v1/redemptions/rdm_nope", headers=brand.headers)).status_code == 404


async def test_redemption_refusals_are_409_problems(client, brand):
    await client.put(
        "/v1/rewards/coffee", json={**COFFEE, "stock": 1, "limit": {"count": 1, "period": "day"}}, headers=brand.headers
    )
    await client.put("/v1/rewards/paused", json={**COFFEE, "paused": True}, headers=brand.headers)
    await client.put(
        "/v1/rewards/vip",
        json={**COFFEE, "eligibility": {"field": "member.tier", "eq": "gold"}},
        headers=brand.headers,
    )
    await client.put("/v1/rewards/big", json={**COFFEE, "cost": 10_000}, headers=brand.headers)
    await _member(client, brand, "m", 500)
    await _member(client, brand, "n", 500)

    async def redeem(member: str, reward: str, key: str):
        return await client.post(
            f"/v1/members/{member}/redemptions", json={"reward": reward, "idempotency_key": key}, headers=brand.headers
        )

    assert (await redeem("m", "coffee", "1")).status_code == 201
    for member, reward, slug in (
        ("m", "coffee", "redemption-limit-reached"),
        ("n", "coffee", "out-of-stock"),
        ("m", "paused", "reward-not-redeemable"),
        ("m", "vip", "reward-not-redeemable"),
        ("m", "big", "insufficient-points"),
    ):
        refused = await redeem(member, reward, f"{reward}-{member}")
        assert refused.status_code == 409, (reward, refused.text)
        assert refused.json()["type"].endswith("/" + slug), refused.json()
    assert (await redeem("m", "nothing", "x")).status_code == 404
    no_key = await client.post("/v1/members/m/redemptions", json={"reward": "coffee"}, headers=brand.headers)
    assert no_key.status_code == 422 and no_key.json()["field"] == "$.idempotency_key"
    points = (await client.get("/v1/members/n/points", headers=brand.headers)).json()
    assert points["available"] == 500  # the refusals wrote nothing


async def test_points_show_pending_and_expiring(client, brand, clock):
    program = {
        "points": {"expiry": {"kind": "rolling", "months": 12}, "notice_days": [30, 7]},
        "earning_rules": [{"key": "buy", "event_type": "purchase", "points": 80, "holding_days": 14}],
    }
    applied = await client.put("/v1/program", json=program, headers=brand.headers)
    assert applied.status_code in (200, 201), applied.text
    posted = await client.post(
        "/v1/events", json=event("e1", "m", "purchase", "2026-11-20T09:00:00Z"), headers=brand.headers
    )
    assert posted.status_code in (200, 201, 202), posted.text
    view = (await client.get("/v1/members/m/points", headers=brand.headers)).json()
    assert (view["available"], view["pending"]) == (0, 80)
    assert view["pending_lots"] == [{"points": 80, "available_at": "2026-12-04T09:00:00Z"}]
    assert view["expiring"][0]["points"] == 80 and view["expiring"][0]["expires_at"].startswith("2027-11-20")
    assert view["lifetime_earned"] == 80 and view["balance"] == 0
    clock.advance(timedelta(days=15))
    later = (await client.get("/v1/members/m/points", headers=brand.headers)).json()
    assert (later["available"], later["pending"], later["pending_lots"]) == (80, 0, [])


async def test_liability(client, brand, clock):
    await client.put("/v1/rewards/coffee", json=COFFEE, headers=brand.headers)
    await _member(client, brand, "m", 200)
    await client.post(
        "/v1/members/m/redemptions", json={"reward": "coffee", "idempotency_key": "a"}, headers=brand.headers
    )
    figures = (await client.get("/v1/liability", headers=brand.headers)).json()
    assert (figures["available"], figures["pending"]) == (140, 0)
    assert (figures["earned"], figures["redeemed"]) == (200, 60)
    assert figures["redemption_rate"] == pytest.approx(0.3)
    empty = (
        await client.get("/v1/liability?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z", headers=brand.headers)
    ).json()
    assert (empty["earned"], empty["redemption_rate"], empty["available"]) == (0, 0.0, 140)
    backwards = await client.get(
        "/v1/liability?from=2021-01-01T00:00:00Z&to=2020-02-01T00:00:00Z", headers=brand.headers
    )
    assert backwards.status_code == 422


async def test_openapi_documents_the_rewards_api(client):
    schema = (await client.get("/schema/openapi.json")).json()
    for path in (
        "/v1/rewards/{key}",
        "/v1/rewards/{key}/codes",
        "/v1/members/{external_id}/redemptions",
        "/v1/redemptions/{redemption_id}/cancel",
        "/v1/redemptions/{redemption_id}/qr.svg",
        "/v1/liability",
    ):
        assert path in schema["paths"], path

"""Segments over HTTP: each metric type, explanations, the program document, and a `segment` filter on ingest."""

from tests.helpers import event

PROGRAM = {
    "earning_rules": [
        {"key": "buy", "event_type": "purchase", "per_unit": {"property": "amount"}},
        {"key": "win-back", "event_type": "purchase", "points": 100, "filter": {"segment": "lapsed"}},
    ],
    "campaigns": [{"key": "always", "title": "Always"}],
    "challenges": [
        {
            "key": "two",
            "campaign": "always",
            "title": "Two",
            "rule": {"type": "count", "event_type": "visit", "target": 2},
        }
    ],
}


def seg(slug, *clauses, match="all"):
    return {"slug": slug, "name": {"en": slug.title(), "it": slug}, "match": match, "clauses": list(clauses)}


SEGMENTS = [
    (seg("buyers-30d", {"metric": "events", "event_type": "purchase", "days": 30, "gte": 3}), {"anna"}),
    (seg("spenders", {"metric": "spend", "event_type": "purchase", "property": "amount", "days": 365, "gte": 400}),
     {"bruno"}),
    (seg("lapsed", {"metric": "days_since_last_event", "gte": 60}), {"bruno"}),
    (seg("rich", {"metric": "points_balance", "gte": 100}), {"bruno"}),
    (seg("gold", {"metric": "tier", "eq": "gold"}), {"bruno"}),
    (seg("vips", {"metric": "badges", "badge": "vip", "gte": 1}), {"anna"}),
    (seg("questers", {"metric": "challenges_completed", "gte": 1}), {"anna"}),
    (seg("redeemers", {"metric": "redemptions", "gte": 1}), {"anna"}),
    (seg("north", {"metric": "attribute", "name": "region", "eq": "north"}), {"bruno"}),
    (seg("either", {"metric": "redemptions", "gte": 1}, {"metric": "tier", "in": ["gold"]}, match="any"),
     {"anna", "bruno"}),
]  # fmt: skip


async def _seed(client, brand):
    headers = brand.headers
    applied = await client.put("/v1/program", json=PROGRAM, headers=headers, params={"mode": "apply"})
    assert applied.status_code == 200, applied.text
    member = {"external_id": "bruno", "attributes": {"region": "north", "tier": "gold"}}
    assert (await client.post("/v1/members", json=member, headers=headers)).status_code == 201
    events = [
        event("b1", "bruno", "purchase", "2026-07-01T09:00:00Z", amount=500),
        event("a1", "anna", "purchase", "2026-11-10T09:00:00Z", amount=50),
        event("a2", "anna", "purchase", "2026-11-15T09:00:00Z", amount=50),
        event("a3", "anna", "purchase", "2026-11-19T09:00:00Z", amount=50),
        event("a4", "anna", "visit", "2026-11-19T10:00:00Z"),
        event("a5", "anna", "visit", "2026-11-19T11:00:00Z"),
    ]
    sent = await client.post("/v1/events", json={"events": events}, headers=headers)
    assert sent.status_code == 200, sent.text
    badge = await client.put("/v1/badges/vip", json={"key": "vip", "name": "VIP"}, headers=headers)
    assert badge.status_code == 201, badge.text
    grant = await client.post("/v1/members/anna/badges/vip/grant", json={"reason": "test"}, headers=headers)
    assert grant.status_code == 201, grant.text
    coffee = {"name": {"en": "Coffee"}, "cost": 60, "type": "product"}
    assert (await client.put("/v1/rewards/coffee", json=coffee, headers=headers)).status_code in (200, 201)
    redeemed = await client.post(
        "/v1/members/anna/redemptions", json={"reward": "coffee", "idempotency_key": "r1"}, headers=headers
    )
    assert redeemed.status_code == 201, redeemed.text


async def test_membership_for_each_metric_type_and_explain(client, brand):
    await _seed(client, brand)
    headers = brand.headers
    for body, _ in SEGMENTS:
        put = await client.put(f"/v1/segments/{body['slug']}", json=body, headers=headers)
        assert put.status_code == 201, put.text
    for body, expected in SEGMENTS:
        got = (await client.get(f"/v1/segments/{body['slug']}", headers=headers)).json()
        assert got["members"] == len(expected), (body["slug"], got)
        assert {m["external_id"] for m in got["sample"]} == expected, body["slug"]
    why = (await client.get("/v1/segments/buyers-30d/members/anna", headers=headers)).json()
    assert why["in_segment"] is True
    assert [(c["value"], c["held"]) for c in why["clauses"]] == [(3, True)]
    lapsed = (await client.get("/v1/segments/lapsed/members/anna", headers=headers)).json()
    assert lapsed["in_segment"] is False and lapsed["clauses"][0]["value"] == 0  # her last event was yesterday
    spend = (await client.get("/v1/segments/spenders/members/bruno", headers=headers)).json()
    assert spend["clauses"][0]["value"] == 500 and spend["in_segment"] is True
    days = (await client.get("/v1/segments/lapsed/members/bruno", headers=headers)).json()
    assert days["clauses"][0]["value"] == 142  # 1 July 09:00 → 20 November 10:00
    balance = (await client.get("/v1/segments/rich/members/anna", headers=headers)).json()
    assert balance["clauses"][0]["value"] == 90  # 150 earned, 60 redeemed
    listed = (await client.get("/v1/segments", headers=headers)).json()
    assert len(listed["segments"]) == len(SEGMENTS)


async def test_segment_filter_on_ingest_sees_the_state_before_each_event(client, brand):
    await _seed(client, brand)
    headers = brand.headers
    body = seg("lapsed", {"metric": "days_since_last_event", "gte": 60})
    assert (await client.put("/v1/segments/lapsed", json=body, headers=headers)).status_code == 201
    batch = [
        event("b2", "bruno", "purchase", "2026-11-20T09:00:00Z", amount=10),
        event("b3", "bruno", "purchase", "2026-11-20T09:05:00Z", amount=10),
        event("a6", "anna", "purchase", "2026-11-20T09:00:00Z", amount=10),
        event("c1", "carla", "purchase", "2026-11-20T09:00:00Z", amount=10),
    ]
    sent = (await client.post("/v1/events", json={"events": batch}, headers=headers)).json()
    keys = [[e["key"] for e in r["effects"] if e["type"] == "points_awarded"] for r in sent["results"]]
    # bruno was lapsed when his first purchase came in; the second one of the same batch sees it;
    # a newcomer (carla) has no last event, so she is not lapsed
    assert keys == [["buy", "win-back"], ["buy"], ["buy"], ["buy"]]
    after = (await client.get("/v1/segments/lapsed", headers=headers)).json()
    assert after["members"] == 0


BAD_SEGMENTS = [
    (seg("x", {"metric": "events", "gte": 1, "lt": 5}), "$.clauses[0]"),
    (seg("x", {"metric": "attribute", "eq": 1}), "$.clauses[0].name"),
    (seg("x", {"metric": "spend", "gte": 1}), "$.clauses[0].property"),
    (seg("x", {"metric": "tier", "days": 3, "eq": "a"}), "$.clauses[0].days"),
    (seg("x", {"metric": "wealth", "gte": 1}), "$.clauses[0].metric"),
]


async def test_segments_and_offers_in_the_program_document(client, brand):
    doc = {
        "segments": [seg("lapsed", {"metric": "days_since_last_event", "gte": 60})],
        "offers": [
            {"key": "back", "kind": "bonus", "points": 50, "event_type": "purchase", "segment": "lapsed",
             "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z", "budget": 1000}
        ],
    }  # fmt: skip
    applied = await client.put("/v1/program", json=doc, headers=brand.headers, params={"mode": "apply"})
    assert applied.status_code == 200, applied.text
    exported = (await client.get("/v1/program", headers=brand.headers)).json()
    assert exported["segments"][0]["slug"] == "lapsed" and exported["offers"][0]["key"] == "back"
    bad = {"offers": [{**doc["offers"][0], "ends_at": "2026-10-01T00:00:00Z"}]}
    refused = await client.put("/v1/program", json=bad, headers=brand.headers, params={"mode": "apply"})
    assert refused.status_code == 422 and refused.json()["field"] == "$.offers[0].ends_at", refused.text


async def test_reward_eligibility_by_segment(client, brand):
    await _seed(client, brand)
    headers = brand.headers
    rich = seg("rich", {"metric": "points_balance", "gte": 100})
    assert (await client.put("/v1/segments/rich", json=rich, headers=headers)).status_code == 201
    gift = {"name": {"en": "Gift"}, "cost": 10, "type": "product", "eligibility": {"segment": "rich"}}
    assert (await client.put("/v1/rewards/gift", json=gift, headers=headers)).status_code in (200, 201)
    body = {"reward": "gift", "idempotency_key": "g1"}
    refused = await client.post("/v1/members/anna/redemptions", json=body, headers=headers)
    assert refused.status_code == 409 and "ineligible" in refused.json()["detail"], refused.text
    granted = await client.post("/v1/members/bruno/redemptions", json=body, headers=headers)
    assert granted.status_code == 201, granted.text


OFFER = {"key": "x", "kind": "bonus", "points": 5, "event_type": "purchase", "members": ["a"],
         "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"}  # fmt: skip
BAD_OFFERS = [
    ({"ends_at": "2026-10-01T00:00:00Z"}, "$.ends_at"),
    ({"segment": "vip"}, "$.segment"),
    ({"members": []}, "$.segment"),
    ({"points": 0}, "$.points"),
    ({"filter": {"field": "nope"}}, "$.filter.field"),
    ({"budget": 0}, "$.budget"),
]


async def test_bad_segments_and_offers_are_refused_and_change_nothing(client, brand):
    for body, field in BAD_SEGMENTS:
        answer = await client.put("/v1/segments/x", json=body, headers=brand.headers)
        assert answer.status_code == 422 and answer.json()["field"] == field, answer.text
    for change, field in BAD_OFFERS:
        answer = await client.put("/v1/offers/x", json={**OFFER, **change}, headers=brand.headers)
        assert answer.status_code == 422 and answer.json()["field"] == field, answer.text
    assert (await client.get("/v1/segments", headers=brand.headers)).json() == {"segments": []}
    assert (await client.get("/v1/offers", headers=brand.headers)).json() == {"offers": []}


async def test_a_campaign_for_a_segment_is_listed_for_its_members_only(client, brand):
    """Eligibility by segment holds outside the pipeline too: the member's challenge list (API, portal)."""
    await _seed(client, brand)
    headers = brand.headers
    rich = seg("rich", {"metric": "points_balance", "gte": 100})
    assert (await client.put("/v1/segments/rich", json=rich, headers=headers)).status_code == 201
    program = {
        "campaigns": [{"key": "vip-only", "title": "For the rich", "eligibility": {"segment": "rich"}}],
        "challenges": [
            {
                "key": "big",
                "campaign": "vip-only",
                "title": "Big",
                "rule": {"type": "count", "event_type": "purchase", "target": 5},
            }
        ],
    }
    applied = await client.put("/v1/program", json=program, headers=headers, params={"mode": "apply"})
    assert applied.status_code == 200, applied.text
    listed = {}
    for member in ("anna", "bruno"):
        answer = await client.get(f"/v1/members/{member}/challenges", headers=headers)
        assert answer.status_code == 200, answer.text
        listed[member] = {c["key"] for c in answer.json()}
    assert listed == {"anna": set(), "bruno": {"big"}}  # bruno holds 500+ points, anna fewer than 100

"""The badge widget never shows a member's external id (no display name → a pseudonym)."""

from __future__ import annotations

from tests.helpers import event

PROGRAM = {"badges": [{"key": "first-visit", "name": "First visit", "rule": {"event_type": "visit", "count": 1}}]}


async def test_a_nameless_members_shelf_shows_a_pseudonym_not_the_external_id(client, brand):
    assert (await client.put("/v1/program", json=PROGRAM, headers=brand.headers)).status_code == 200
    external_id = "crm-4711-secret"
    sent = await client.post(
        "/v1/events", json=event("wp-1", external_id, "visit", "2026-11-20T09:00:00Z"), headers=brand.headers
    )
    assert sent.status_code == 200, sent.text
    token = (await client.post(f"/v1/members/{external_id}/widget-token", json={}, headers=brand.headers)).json()[
        "token"
    ]
    data = await client.get(f"/widgets/v1/badges?key={brand.publishable}&member={token}")
    assert data.status_code == 200, data.text
    assert external_id not in data.text
    assert data.json()["member"].startswith("Player ")
    page = await client.get(f"/widgets/badges?key={brand.publishable}&member={token}")
    assert page.status_code == 200
    assert external_id not in page.text

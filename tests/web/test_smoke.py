from engine.earning import EarningRuleSpec
from engine.rules_store import put_rule
from tests.helpers import event


async def test_event_earns_points(client, brand, db, clock):
    await put_rule(
        db,
        brand_id=brand.brand.id,
        spec=EarningRuleSpec(key="visit", event_type="visit", points=10),
        now=clock.now(),
    )
    response = await client.post(
        "/v1/events", json=event("e1", "m1", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["effects"][0]["points"] == 10

"""Segment and offer pages: the console's live counts and experiment report, the portal's "For you"."""

import re
import uuid

from engine.admins import create_admin
from tests.helpers import event

SEGMENT = {"slug": "buyers", "name": {"en": "Buyers", "it": "Acquirenti"},
           "clauses": [{"metric": "events", "event_type": "purchase", "days": 30, "gte": 1}]}  # fmt: skip
WINDOW = {"starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"}
OFFERS = [
    {"key": "double", "title": {"en": "Double points", "it": "Punti doppi"}, "kind": "multiplier", "multiplier": 2,
     "event_type": "purchase", "segment": "buyers", "opt_in": True, **WINDOW},
    {"key": "ab", "title": {"en": "Fifty more"}, "kind": "bonus", "points": 50, "event_type": "purchase",
     "members": [f"m{i}" for i in range(6)], "per_member_limit": 3, **WINDOW,
     "experiment": {"arms": [{"key": "control", "percent": 50, "control": True}, {"key": "fifty", "percent": 50}]}},
]  # fmt: skip


async def _seed(client, brand):
    headers = brand.headers
    assert (await client.put("/v1/segments/buyers", json=SEGMENT, headers=headers)).status_code == 201
    for body in OFFERS:
        assert (await client.put(f"/v1/offers/{body['key']}", json=body, headers=headers)).status_code == 201
    member = {"external_id": "m1", "display_name": "Giulia", "locale": "en"}
    assert (await client.post("/v1/members", json=member, headers=headers)).status_code == 201
    batch = [event(f"e{i}", f"m{i}", "purchase", "2026-11-19T09:00:00Z", amount=10) for i in range(6)]
    batch += [event(f"f{i}", f"m{i}", "purchase", "2026-11-19T10:00:00Z", amount=10) for i in range(3)]
    assert (await client.post("/v1/events", json={"events": batch}, headers=headers)).status_code == 200


async def test_console_lists_segments_with_counts_and_the_experiment_report(client, brand, db, clock):
    from tests.web.test_console import PASSWORD, sign_in

    await _seed(client, brand)
    email = f"admin-{uuid.uuid4().hex[:8]}@brand.example"
    await create_admin(db, brand_id=brand.brand.id, email=email, password=PASSWORD, name="Ada", now=clock.now())
    assert (await sign_in(client, email)).status_code == 303
    page = await client.get("/console/segments")
    assert page.status_code == 200, page.text
    row = re.search(r'<tr data-segment="buyers">.*?</tr>', page.text, re.S)
    assert row and re.search(r"data-count>6<", row.group(0)) and "Giulia" in row.group(0)
    assert "events(purchase, 30d) ≥ 1" in row.group(0)
    offers = await client.get("/console/offers")
    assert offers.status_code == 200, offers.text
    report = (await client.get("/v1/offers/ab/report", headers=brand.headers)).json()
    arms = {a["arm"]: a for a in report["arms"]}
    assert arms["control"]["members"] + arms["fifty"]["members"] == 6
    table = re.search(r'id="report-ab".*?</table>', offers.text, re.S)
    assert table and 'data-arm="control"' in table.group(0) and 'data-arm="fifty"' in table.group(0)
    italian = await client.get("/console/segments?lang=it")
    assert "Acquirenti" in italian.text and "Segmenti" in italian.text


async def test_portal_for_you_lists_offers_and_activates_an_opt_in_one(client, brand):
    from tests.web.test_console import post_form
    from tests.web.test_pages import open_portal

    await _seed(client, brand)
    await open_portal(client, brand, "m1")
    page = await client.get("/portal/offers")
    assert page.status_code == 200, page.text
    text = re.sub(r"\s+", " ", page.text)
    assert "Double points" in text and "2× points on" in text and "Activate" in text
    activated = await post_form(client, "/portal/offers/double/activate", {})
    assert activated.status_code == 303, activated.text
    again = re.sub(r"\s+", " ", (await client.get("/portal/offers")).text)
    assert 'data-state="active"' in again
    listed = (await client.get("/v1/members/m1/offers", headers=brand.headers)).json()
    assert next(o for o in listed if o["key"] == "double")["active"] is True
    italian = (await client.get("/portal/offers?lang=it")).text
    assert "Per te" in italian and "Punti doppi" in italian

"""The portal's Rewards tab and the console's rewards, redemptions and liability pages, on both backends."""

from __future__ import annotations

import re

from tests.helpers import event
from tests.web.test_console import admin, console, csrf, post_form, sign_in  # noqa: F401 - fixtures
from tests.web.test_pages import enrol, open_portal

CATALOG = {
    "points": {"expiry": {"kind": "rolling", "months": 12}, "notice_days": [30, 7]},
    "earning_rules": [{"key": "buy", "event_type": "purchase", "points": 50, "holding_days": 14}],
    "rewards": [
        {
            "key": "voucher",
            "name": {"en": "Five euro voucher", "it": "Buono da cinque euro"},
            "cost": 100,
            "type": "voucher",
            "codes": {"source": "pool"},
            "stock": 5,
        },
        {
            "key": "spa",
            "name": {"en": "Spa day", "it": "Giornata alla spa"},
            "cost": 1000,
            "type": "experience",
        },
    ],
}


async def _setup(client, brand, points: int = 250) -> None:
    applied = await client.put("/v1/program", json=CATALOG, headers=brand.headers)
    assert applied.status_code == 200, applied.text
    await client.post("/v1/rewards/voucher/codes", json=["CODE-0001", "CODE-0002"], headers=brand.headers)
    await enrol(client, brand, "m1", name="Giulia", locale="en")
    await client.post(
        "/v1/members/m1/points/adjustments", json={"points": points, "reason": "welcome"}, headers=brand.headers
    )


async def test_member_redeems_with_a_confirmation_and_sees_the_code(client, brand):
    await _setup(client, brand)
    posted = await client.post(
        "/v1/events", json=event("p1", "m1", "purchase", "2026-11-20T09:00:00Z"), headers=brand.headers
    )
    assert posted.status_code in (200, 201, 202), posted.text
    await open_portal(client, brand, "m1")
    page = await client.get("/portal/rewards")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'aria-current="page"' in html and "Five euro voucher" in html
    assert "750 more points needed" in html  # the spa: 1,000 - 250 (the 50 from the purchase are pending)
    assert "50 pending" in html and "expiring on" in html
    confirm = await client.get("/portal/rewards/voucher/redeem")
    assert confirm.status_code == 200 and "Confirm and redeem" in confirm.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', confirm.text).group(1)
    no_csrf = await client.post("/portal/rewards/voucher/redeem", data={"idempotency_key": key})
    assert no_csrf.status_code == 403
    done = await client.post(
        "/portal/rewards/voucher/redeem",
        data={"idempotency_key": key, "_csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    again = await client.post(
        "/portal/rewards/voucher/redeem",
        data={"idempotency_key": key, "_csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert again.headers["location"] == done.headers["location"]  # a double submit redeems once
    shown = await client.get(done.headers["location"])
    assert 'id="redemption-code">CODE-0001<' in shown.text and "<svg" in shown.text
    points = (await client.get("/v1/members/m1/points", headers=brand.headers)).json()
    assert points["available"] == 150
    listed = await client.get("/portal/rewards")
    assert "CODE-0001" in listed.text
    too_dear = await client.post(
        "/portal/rewards/spa/redeem", data={"idempotency_key": "x", "_csrf_token": csrf(client)}
    )
    assert too_dear.status_code == 409 and "do not have enough points" in too_dear.text
    other = await client.get("/portal/rewards/redemptions/rdm_nope")
    assert other.status_code == 404
    hidden = {"name": {"en": "Staff gift"}, "cost": 10, "type": "product", "visible": False}
    assert (await client.put("/v1/rewards/staff-gift", json=hidden, headers=brand.headers)).status_code in (200, 201)
    assert "Staff gift" not in (await client.get("/portal/rewards")).text
    assert (await client.get("/portal/rewards/staff-gift/redeem")).status_code == 404
    crafted = await client.post(
        "/portal/rewards/staff-gift/redeem", data={"idempotency_key": "y", "_csrf_token": csrf(client)}
    )
    assert crafted.status_code == 404
    after = (await client.get("/v1/members/m1/points", headers=brand.headers)).json()
    assert after["available"] == 150  # nothing was redeemed


async def test_portal_rewards_in_italian(client, brand):
    await _setup(client, brand)
    await open_portal(client, brand, "m1")
    page = await client.get("/portal/rewards?lang=it")
    assert "Premi" in page.text and "Buono da cinque euro" in page.text
    assert "punti" in page.text


async def test_console_manages_the_catalog_codes_and_redemptions(console, brand, admin):  # noqa: F811
    await _setup(console, brand)
    await sign_in(console, admin)
    listed = await console.get("/console/rewards")
    assert listed.status_code == 200 and "Five euro voucher" in listed.text
    assert 'href="/console/liability"' in listed.text
    form = {
        "key": "coffee",
        "name_en": "Free coffee",
        "name_it": "Caffè gratis",
        "cost": "60",
        "type": "product",
        "stock": "10",
        "limit_period": "ever",
        "visible": "on",
    }
    created = await post_form(console, "/console/rewards", form)
    assert created.status_code == 303, created.text
    bad = await post_form(console, "/console/rewards", {**form, "key": "tea", "cost": "lots"})
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text
    no_codes = await post_form(console, "/console/rewards", {**form, "key": "card", "type": "voucher"})
    assert no_codes.status_code == 422 and "codes" in no_codes.text
    reward = (await console.get("/v1/rewards/coffee", headers=brand.headers)).json()
    assert reward["reward"]["name"] == {"en": "Free coffee", "it": "Caffè gratis"} and reward["remaining"] == 10
    paused = await post_form(console, "/console/rewards/coffee/pause", {})
    assert paused.status_code == 303
    assert (await console.get("/v1/rewards/coffee", headers=brand.headers)).json()["reward"]["paused"] is True
    edit_page = await console.get("/console/rewards/coffee")
    assert edit_page.status_code == 200 and 'value="60"' in edit_page.text
    edited = await post_form(console, "/console/rewards/coffee", {**form, "cost": "70", "stock": "20", "paused": "on"})
    assert edited.status_code == 303, edited.text
    after_edit = (await console.get("/v1/rewards/coffee", headers=brand.headers)).json()
    assert (after_edit["reward"]["cost"], after_edit["remaining"], after_edit["reward"]["paused"]) == (70, 20, True)
    bad_edit = await post_form(console, "/console/rewards/coffee", {**form, "stock": "-1"})
    assert bad_edit.status_code == 422 and 'aria-invalid="true"' in bad_edit.text
    uploaded = await console.post(
        "/console/rewards/voucher/codes",
        files={"codes_file": ("codes.csv", b"code\nCODE-0003\nCODE-0001\n", "text/csv")},
        data={"codes_text": "CODE-0004", "_csrf_token": csrf(console)},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303, uploaded.text
    counts = (await console.get("/v1/rewards/voucher/codes", headers=brand.headers)).json()
    assert counts["available"] == 4
    redeemed = await console.post(
        "/v1/members/m1/redemptions", json={"reward": "voucher", "idempotency_key": "c1"}, headers=brand.headers
    )
    rid = redeemed.json()["redemption"]["id"]
    found = await console.get("/console/redemptions?q=m1")
    assert rid in found.text and "CODE-0001" in found.text
    none = await console.get("/console/redemptions?q=nobody-at-all")
    assert rid not in none.text
    cancelled = await post_form(console, f"/console/redemptions/{rid}/cancel", {})
    assert cancelled.status_code == 303
    assert (await console.get(f"/v1/redemptions/{rid}", headers=brand.headers)).json()["redemption"]["status"] == (
        "cancelled"
    )


async def test_console_liability_page_with_charts_and_numbers(console, brand, admin):  # noqa: F811
    await _setup(console, brand)
    await console.post(
        "/v1/members/m1/redemptions", json={"reward": "voucher", "idempotency_key": "l1"}, headers=brand.headers
    )
    await sign_in(console, admin)
    page = await console.get("/console/liability?days=30")
    assert page.status_code == 200, page.text
    assert 'id="c-expiries-t"' in page.text and 'id="c-rate-t"' in page.text
    assert page.text.count("Show the numbers") == 3
    assert "40%" in page.text  # 100 redeemed of 250 earned
    custom = await console.get("/console/liability?from=2026-01-01&to=2026-11-30")
    assert custom.status_code == 200 and "2026-01" in custom.text
    italian = await console.get("/console/liability?lang=it")
    assert "Passività" in italian.text or "passività" in italian.text

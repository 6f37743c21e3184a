"""Tiers over HTTP and in the program document."""

import re

from tests.helpers import event

GOLD = {"key": "gold", "name": {"en": "Gold", "it": "Oro"}, "color": "#d4a017", "threshold": 100, "multiplier": 2.0,
        "perks": [{"en": "Free delivery", "it": "Consegna gratuita"}], "choices": ["mug", "tote"]}  # fmt: skip


async def _define(client, brand):
    silver = await client.put("/v1/tiers/silver", json={"key": "silver", "threshold": 0}, headers=brand.headers)
    assert silver.status_code == 201, silver.text
    gold = await client.put("/v1/tiers/gold", json=GOLD, headers=brand.headers)
    assert gold.status_code == 201, gold.text
    rule = {"key": "buy", "event_type": "purchase", "per_unit": {"property": "amount"}}
    assert (await client.put("/v1/earning-rules/buy", json=rule, headers=brand.headers)).status_code in (200, 201)


async def test_define_qualify_choose_override_and_history(client, brand):
    await _define(client, brand)
    listed = (await client.get("/v1/tiers", headers=brand.headers)).json()
    assert [t["tier"]["key"] for t in listed["tiers"]] == ["silver", "gold"]
    assert listed["qualification"]["window"]["kind"] == "calendar_year"
    clash = await client.put("/v1/tiers/bronze", json={"key": "bronze", "threshold": 100}, headers=brand.headers)
    assert clash.status_code == 422 and "same threshold" in clash.json()["detail"]
    sent = await client.post(
        "/v1/events", json={"events": [event("e1", "m", "purchase", "2026-11-20T09:00:00Z", amount=120)]},
        headers=brand.headers,
    )  # fmt: skip
    assert sent.status_code in (200, 201), sent.text
    effects = sent.json()["results"][0]["effects"]
    assert [e["tier"] for e in effects if e["type"] == "tier_changed"] == ["gold"]
    view = (await client.get("/v1/members/m/tier", headers=brand.headers)).json()
    assert (view["tier"], view["value"], view["next_tier"]) == ("gold", 120, None)
    bad = await client.post("/v1/members/m/tier/choice", json={"reward": "car"}, headers=brand.headers)
    assert bad.status_code == 422
    chosen = await client.post("/v1/members/m/tier/choice", json={"reward": "mug"}, headers=brand.headers)
    assert chosen.status_code == 201 and chosen.json()["tier"] == "gold"
    twice = await client.post("/v1/members/m/tier/choice", json={"reward": "tote"}, headers=brand.headers)
    assert twice.status_code == 409
    override = await client.post(
        "/v1/members/m/tier", json={"tier": "silver", "until": "2026-12-31T00:00:00Z", "reason": "test"},
        headers=brand.headers,
    )  # fmt: skip
    assert override.status_code == 200, override.text
    body = override.json()
    assert (body["tier"], body["override_reason"]) == ("silver", "test")
    assert [h["change"] for h in body["history"]] == ["override", "upgraded"]
    stats = (await client.get("/v1/tier-program/stats?days=2", headers=brand.headers)).json()
    assert stats["distribution"] == {"silver": 1}
    simulated = await client.post(
        "/v1/tier-program/simulations",
        json={"tiers": [{"key": "silver", "threshold": 0}, {"key": "gold", "threshold": 200}]},
        headers=brand.headers,
    )
    assert simulated.status_code == 200, simulated.text
    assert simulated.json()["after"] == {"silver": 1}


async def test_tier_multiplier_reaches_the_points_step_and_member_tier_predicate(client, brand):
    await _define(client, brand)
    first = {"events": [event("e1", "m", "purchase", "2026-11-20T09:00:00Z", amount=150)]}
    await client.post("/v1/events", json=first, headers=brand.headers)
    second = {"events": [event("e2", "m", "purchase", "2026-11-20T10:00:00Z", amount=10)]}
    result = (await client.post("/v1/events", json=second, headers=brand.headers)).json()
    awarded = [e for e in result["results"][0]["effects"] if e["type"] == "points_awarded"]
    assert (awarded[0]["points"], awarded[0]["multiplier"]) == (20, 2.0)


async def test_tiers_in_the_program_document(client, brand):
    document = {
        "tiers": {
            "qualification": {
                "metric": {"kind": "event_count", "event_types": ["visit"]},
                "window": {"kind": "rolling", "days": 90},
            },
            "levels": [{"key": "regular", "threshold": 3}, {"key": "fan", "threshold": 10}],
        }
    }
    applied = await client.put("/v1/program", json=document, headers=brand.headers)
    assert applied.status_code == 200, applied.text
    exported = (await client.get("/v1/program", headers=brand.headers)).json()
    assert [t["key"] for t in exported["tiers"]["levels"]] == ["regular", "fan"]
    broken = {"tiers": {"qualification": {"metric": {"kind": "event_count"}}, "levels": [{"key": "x"}]}}
    refused = await client.put("/v1/program", json=broken, headers=brand.headers)
    assert refused.status_code == 422 and refused.json()["field"] == "$.tiers.qualification.metric.event_types"
    assert (await client.get("/v1/tiers", headers=brand.headers)).json()["qualification"]["window"]["days"] == 90


async def test_evaluate_command_runs_the_job(client, brand, settings, monkeypatch):
    """`questline tiers evaluate --brand` runs the re-evaluation with the server's wiring."""
    import asyncio

    from click.testing import CliRunner

    from web.cli import cli

    await _define(client, brand)
    for name, value in (
        ("DATABASE_URL", settings.database_url),
        ("REDIS_URL", settings.redis_url),
        ("REDIS_NAMESPACE", settings.redis_namespace),
    ):
        monkeypatch.setenv(f"QUESTLINE_{name}", value)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["tiers", "evaluate", "--brand", brand.brand.slug])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{brand.brand.slug}: ") and '"downgraded": 0' in result.output
    listed = await asyncio.to_thread(CliRunner().invoke, cli, ["tiers", "list", "--brand", brand.brand.slug])
    assert listed.exit_code == 0 and listed.output.split()[0] == "silver"


SPEND_PROGRAM = {
    "earning_rules": [{"key": "buy", "event_type": "purchase", "per_unit": {"property": "amount"}}],
    "tiers": {
        "qualification": {"metric": {"kind": "property_sum", "property": "amount"}, "unit": "€"},
        "levels": [
            {"key": "silver", "name": {"en": "Silver", "it": "Argento"}, "threshold": 0,
             "perks": [{"en": "Birthday gift", "it": "Regalo di compleanno"}]},
            {"key": "gold", "name": {"en": "Gold", "it": "Oro"}, "threshold": 200, "multiplier": 1.5, "color": "#d4a017"},
        ],
    },
}  # fmt: skip


async def test_portal_tier_page_shows_progress_benefits_and_history(client, brand):
    from tests.web.test_pages import open_portal

    assert (await client.put("/v1/program", json=SPEND_PROGRAM, headers=brand.headers)).status_code == 200
    member = {"external_id": "m1", "display_name": "Giulia", "locale": "en"}
    assert (await client.post("/v1/members", json=member, headers=brand.headers)).status_code == 201
    sent = await client.post(
        "/v1/events", json=event("p1", "m1", "purchase", "2026-11-20T09:00:00Z", amount=80), headers=brand.headers
    )
    assert sent.status_code == 200, sent.text
    await open_portal(client, brand, "m1")
    page = await client.get("/portal/tier")
    assert page.status_code == 200, page.text
    text = re.sub(r"\s+", " ", page.text)
    assert "€120 to Gold" in text
    assert "Birthday gift" in text
    assert "Upgraded to Silver" in text
    assert 'aria-current="page"' in text and 'href="/portal/tier"' in text
    italian = re.sub(r"\s+", " ", (await client.get("/portal/tier?lang=it")).text)
    assert "€120 per Oro" in italian and "Regalo di compleanno" in italian


async def test_console_tiers_page_simulates_then_applies_a_threshold_change(client, brand, db, clock):
    import uuid

    from engine.admins import create_admin
    from tests.web.test_console import PASSWORD, post_form, sign_in

    email = f"admin-{uuid.uuid4().hex[:8]}@brand.example"
    await create_admin(db, brand_id=brand.brand.id, email=email, password=PASSWORD, name="Ada", now=clock.now())
    assert (await client.put("/v1/program", json=SPEND_PROGRAM, headers=brand.headers)).status_code == 200
    batch = {"events": [
        event("a1", "a", "purchase", "2026-11-20T09:00:00Z", amount=150),
        event("b1", "b", "purchase", "2026-11-20T09:00:00Z", amount=250),
    ]}  # fmt: skip
    assert (await client.post("/v1/events", json=batch, headers=brand.headers)).status_code == 200
    assert (await sign_in(client, email)).status_code == 303
    page = await client.get("/console/tiers")
    assert page.status_code == 200
    assert 'id="tier-distribution-t"' in page.text and 'href="/console/tiers" aria-current="page"' in page.text
    wrong = await post_form(client, "/console/tiers/simulate", {"threshold_silver": "0", "threshold_gold": "lots"})
    assert wrong.status_code == 422 and "Enter a number" in wrong.text
    simulated = await post_form(client, "/console/tiers/simulate", {"threshold_silver": "0", "threshold_gold": "100"})
    assert simulated.status_code == 200, simulated.text
    assert "1 members would move up and 0 down, of 2." in re.sub(r"\s+", " ", simulated.text)
    listed = (await client.get("/v1/tiers", headers=brand.headers)).json()
    assert listed["tiers"][1]["tier"]["threshold"] == 200  # the simulation changed nothing
    applied = await post_form(client, "/console/tiers/apply", {"threshold_silver": "0", "threshold_gold": "100"})
    assert applied.status_code == 303
    listed = (await client.get("/v1/tiers", headers=brand.headers)).json()
    assert listed["tiers"][1]["tier"]["threshold"] == 100


async def test_openapi_documents_the_tier_endpoints(client):
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    for path in ("/v1/tiers", "/v1/tiers/{key}", "/v1/members/{external_id}/tier", "/v1/tier-program/simulations"):
        assert path in paths, path
    assert set(paths["/v1/tiers/{key}"]) == {"get", "put", "delete"}
